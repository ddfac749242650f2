"""SQLAlchemy ORM models, one module per table family. Importing this package registers them all."""

from genai_service.kit.db import Base
from genai_service.models.api_key import ApiKey
from genai_service.models.conversation import (
    Conversation,
    Generation,
    GenerationStatus,
    Message,
    MessageRole,
    MessageStatus,
)
from genai_service.models.document import Document, DocumentStatus
from genai_service.models.limits import CallerLimits
from genai_service.models.refresh_token import RefreshToken
from genai_service.models.response import StoredResponse
from genai_service.models.usage import (
    BudgetCounter,
    BudgetPeriod,
    BudgetReservation,
    BudgetSubject,
    DailyUsage,
    UsageRecord,
    UsageStatus,
)
from genai_service.models.user import ANONYMOUS_EMAIL, ANONYMOUS_USER_ID, Role, User

__all__ = [
    "ANONYMOUS_EMAIL",
    "ANONYMOUS_USER_ID",
    "ApiKey",
    "Base",
    "BudgetCounter",
    "BudgetPeriod",
    "BudgetReservation",
    "BudgetSubject",
    "CallerLimits",
    "Conversation",
    "DailyUsage",
    "Document",
    "DocumentStatus",
    "Generation",
    "GenerationStatus",
    "Message",
    "MessageRole",
    "MessageStatus",
    "RefreshToken",
    "Role",
    "StoredResponse",
    "UsageRecord",
    "UsageStatus",
    "User",
]
