"""What the OpenAPI document needs to know beyond the handlers: who may call what, and which
domain errors each operation can answer. The mechanism lives in :mod:`reelhouse.platform.openapi`;
this is the composition root's part, so it may name every domain's errors.
"""

from __future__ import annotations

from reelhouse.accounts.auth import AdminRequired, AuthenticationRequired, requires_admin, requires_user
from reelhouse.accounts.services import (
    AccountDisabled,
    CannotChangeSelf,
    EmailTaken,
    InvalidCredentials,
    InvalidRefreshToken,
    LoginThrottled,
    WrongPassword,
)
from reelhouse.assets.controllers import NotOffsetStream, TusVersionUnsupported
from reelhouse.assets.services import (
    MediaNotFoundForTitle,
    NoSourceUrl,
    NotAVideo,
    UploadChunkTooLarge,
    UploadNotFound,
    UploadOffsetMismatch,
    UploadTooLarge,
    UploadTooLong,
)
from reelhouse.assets.sources import SourceTooLarge, SourceUnreachable, SourceUrlNotAllowed
from reelhouse.catalog.services import ContentNotFound, GenreNotFound, GenreSlugTaken
from reelhouse.notifications.services import BadUnsubscribeLink, NotificationNotFound, NotificationNotRequeueable
from reelhouse.plans.services import PlanNameTaken, PlanNotFound
from reelhouse.platform.errors import DomainError
from reelhouse.platform.openapi import Conventions, Failure
from reelhouse.playback.history import ContentUnavailable, PlanRequired, WatchEntryNotFound
from reelhouse.playback.media import (
    InvalidStreamSignature,
    MediaNotFound,
    RangeNotSatisfiable,
    ResolutionNotAllowed,
    StreamEnded,
    StreamUrlExpired,
)
from reelhouse.playback.sessions import MediaNotReady, PlaybackSessionNotFound, StreamLimitReached
from reelhouse.subscriptions.services import (
    AlreadyCancelled,
    AlreadySubscribed,
    IdempotencyKeyReused,
    NoActiveSubscription,
    PlanNotAvailable,
    SamePlan,
    SubscriptionNotCurrent,
    SubscriptionNotFound,
)

_STREAM_URL = (InvalidStreamSignature, StreamUrlExpired, StreamEnded, ResolutionNotAllowed, MediaNotFound)
_SUBSCRIPTION = (SubscriptionNotFound,)
_TITLE = (ContentNotFound,)
_GENRE_WRITE = (GenreSlugTaken,)

#: The domain errors each operation may answer, beyond what its route shows (guards, path ids, body).
DOMAIN_ERRORS: dict[str, tuple[type[DomainError], ...]] = {
    "Register": (EmailTaken,),
    "Login": (InvalidCredentials, AccountDisabled, LoginThrottled),
    "Refresh": (InvalidRefreshToken,),
    "RefreshWithBearer": (InvalidRefreshToken,),
    "ChangePassword": (WrongPassword,),
    "AdminRevokeAdmin": (CannotChangeSelf,),
    "AdminDisableUser": (CannotChangeSelf,),
    "GetPlan": (PlanNotFound,),
    "AdminCreatePlan": (PlanNameTaken,),
    "AdminReplacePlan": (PlanNotFound, PlanNameTaken),
    "AdminUpdatePlan": (PlanNotFound, PlanNameTaken),
    "AdminDeletePlan": (PlanNotFound,),
    "Subscribe": (PlanNotFound, PlanNotAvailable, AlreadySubscribed, IdempotencyKeyReused),
    "GetActiveSubscription": (NoActiveSubscription,),
    "GetSubscription": _SUBSCRIPTION,
    "CancelSubscription": (*_SUBSCRIPTION, AlreadyCancelled, SubscriptionNotCurrent),
    "RenewSubscription": (*_SUBSCRIPTION, AlreadySubscribed),
    "ChangeSubscriptionPlan": (*_SUBSCRIPTION, PlanNotFound, PlanNotAvailable, SubscriptionNotCurrent, SamePlan),
    "GetContent": _TITLE,
    "AdminReplaceContent": (*_TITLE, GenreNotFound),
    "AdminUpdateContent": (*_TITLE, GenreNotFound),
    "AdminCreateContent": (GenreNotFound,),
    "AdminDeleteContent": _TITLE,
    "ReplaceFollowedGenres": (GenreNotFound,),
    "AdminCreateGenre": _GENRE_WRITE,
    "AdminReplaceGenre": (GenreNotFound, *_GENRE_WRITE),
    "AdminDeleteGenre": (GenreNotFound,),
    "RecordProgress": (ContentUnavailable, PlanRequired),
    "UpdateProgress": (WatchEntryNotFound, PlanRequired),
    "HideWatchEntry": (WatchEntryNotFound,),
    "StartPlayback": (ContentUnavailable, PlanRequired, MediaNotReady, StreamLimitReached),
    "StopPlayback": (PlaybackSessionNotFound,),
    "AdminTerminatePlayback": (PlaybackSessionNotFound,),
    "StreamManifest": _STREAM_URL,
    "StreamManifestHead": _STREAM_URL,
    "StreamRendition": (*_STREAM_URL, RangeNotSatisfiable),
    "StreamRenditionHead": (*_STREAM_URL, RangeNotSatisfiable),
    "TitlePoster": (MediaNotFound,),
    "TitlePosterHead": (MediaNotFound,),
    "CreateUpload": (AuthenticationRequired, AdminRequired, TusVersionUnsupported, UploadTooLarge, ContentNotFound),
    "UploadOffset": (TusVersionUnsupported, UploadNotFound),
    "AppendUpload": (
        TusVersionUnsupported,
        UploadNotFound,
        UploadOffsetMismatch,
        UploadChunkTooLarge,
        UploadTooLong,
        NotOffsetStream,
        NotAVideo,
    ),
    "TerminateUpload": (TusVersionUnsupported, UploadNotFound),
    "GetTitleMedia": (ContentNotFound,),
    "IngestTitleMedia": (ContentNotFound, NoSourceUrl, SourceUrlNotAllowed, SourceTooLarge, SourceUnreachable),
    "DeleteTitleMedia": (ContentNotFound, MediaNotFoundForTitle),
    "Unsubscribe": (BadUnsubscribeLink,),
    "UnsubscribeOneClick": (BadUnsubscribeLink,),
    "AdminRequeueNotification": (NotificationNotFound, NotificationNotRequeueable),
}

_NOT_READY = {
    "description": "Service Unavailable: the database or Redis does not answer (named in `checks`)",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["status", "checks"],
                "properties": {
                    "status": {"type": "string", "enum": ["unavailable"]},
                    "checks": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            },
            "example": {"status": "unavailable", "checks": {"database": "ok", "redis": "unavailable"}},
        }
    },
}

API_CONVENTIONS = Conventions(
    user_guards=frozenset({requires_user}),
    admin_guards=frozenset({requires_admin}),
    failures={
        operation_id: tuple(Failure.of(error) for error in errors) for operation_id, errors in DOMAIN_ERRORS.items()
    },
    # CreateUpload shares its handler with the public tus discovery (OPTIONS): its guard lets
    # discovery through and wants an administrator for the rest.
    bearer_without_guard=frozenset({"RefreshWithBearer", "CreateUpload"}),
    no_backend_prefixes=("/health", "/ready", "/metrics"),
    responses={
        "Ready": {"503": _NOT_READY},
        "TusDiscovery": {
            "204": {
                "description": "tus discovery: Tus-Resumable, Tus-Version, Tus-Extension, Tus-Max-Size and "
                "Tus-Max-Chunk-Size headers"
            }
        },
    },
)
