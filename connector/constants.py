"""Constants shared by the connector and the emulator (no imports, no logic)."""

PAGE_SIZE = 50
BATCH_MAX = 50

# Leaky bucket per plan: (capacity X, drain per second Y).
BUCKET_PLANS: dict[str, tuple[int, float]] = {"standard": (50, 2.0), "enterprise": (250, 5.0)}

# System CRM entity types by name (crm.enum.ownertype).
SYSTEM_ENTITY_TYPES: dict[str, int] = {
    "lead": 1,
    "deal": 2,
    "contact": 3,
    "company": 4,
    "quote": 7,
    "invoice": 31,
}

# Codes of the five stages Bitrix24 creates for every new smart-process funnel.
DEFAULT_STAGE_CODES = ("NEW", "PREPARATION", "CLIENT", "SUCCESS", "FAIL")
SYSTEM_STAGE_CODES = ("NEW", "SUCCESS", "FAIL")

# crm.type flags a client may set, in the order of crm.type.fields.
TYPE_FLAGS = (
    "isCategoriesEnabled",
    "isStagesEnabled",
    "isBeginCloseDatesEnabled",
    "isClientEnabled",
    "isUseInUserfieldEnabled",
    "isLinkWithProductsEnabled",
    "isMycompanyEnabled",
    "isDocumentsEnabled",
    "isSourceEnabled",
    "isObserversEnabled",
    "isRecyclebinEnabled",
    "isAutomationEnabled",
    "isBizProcEnabled",
    "isSetOpenPermissions",
)
# Flags the type object returns but the portal manages itself.
READ_ONLY_TYPE_FLAGS = ("isPaymentsEnabled", "isCountersEnabled")

# userfieldconfig.add: FIELD_NAME is 4..50 chars of ^[0-9A-Z_]+$ and starts with UF_CRM_{typeId}_.
UF_NAME_MAX = 50
UF_PREFIX = "UF_CRM_"
# Type ids are small autoincrements (3, 7, 16 ...); we reserve 5 digits so a code fits on any portal.
TYPE_ID_DIGITS_RESERVED = 5
UF_CODE_MAX = UF_NAME_MAX - len(UF_PREFIX) - TYPE_ID_DIGITS_RESERVED - 1  # 37: the longest field code
