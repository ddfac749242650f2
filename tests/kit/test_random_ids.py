"""Ids drawn without a system call each: unique, well-formed, and not repeated by a fork."""

from __future__ import annotations

import os
import random
import re

from genai_service.kit.random_ids import random_hex, random_uuid


def test_ids_are_well_formed_and_distinct() -> None:
    hexes = [random_hex() for _ in range(10_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", value) for value in hexes)
    assert len(set(hexes)) == len(hexes)
    uuids = [random_uuid() for _ in range(1_000)]
    assert {value.version for value in uuids} == {4}
    assert len(set(uuids)) == len(uuids)


def test_seeding_the_shared_generator_does_not_repeat_ids() -> None:
    random.seed(7)
    first = random_hex(), random_uuid()
    random.seed(7)
    assert (random_hex(), random_uuid()) != first


def test_a_forked_child_draws_other_ids_than_its_parent() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write, random_hex().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert re.fullmatch(r"[0-9a-f]{32}", child)
    assert child != random_hex()
