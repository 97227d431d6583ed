"""The LocalAuthListManagement profile: SendLocalList and GetLocalListVersion (OCPP 1.6 §5.15,
§5.11, §3.5).

The list itself (versions, Full and Differential updates, size limits) is
:class:`~simulator.machines.auth.LocalAuthList`, kept in the context; it takes part in every
authorization (:func:`~simulator.machines.auth.decide`: ``LocalPreAuthorize`` online,
``LocalAuthorizeOffline`` offline, the list before the cache). Rules:

- GetLocalListVersion: the version of the last accepted update (0: no list yet); -1 while
  ``LocalAuthListEnabled`` is false (the list is not in use).
- SendLocalList: NotSupported while ``LocalAuthListEnabled`` is false; Failed when the request
  carries more than ``SendLocalListMaxLength`` entries or names a tag twice, or the list would
  hold more than ``LocalAuthListMaxLength``; VersionMismatch for a Differential update whose
  ``listVersion`` is not greater than the current version (the UpdateStatus of the spec); else
  Accepted: a Full update replaces the list, a Differential one adds or replaces entries and
  removes those sent without ``idTagInfo``, and the list takes the request's version.
- An accepted update clears the LocalListConflict warning of connector 0 (the central system
  has sent its list again).
- The list and its version survive a reboot (they live in the context); a crash or a kill
  forgets them (they are not part of the charger's memory).
"""

from __future__ import annotations

import msgspec

from simulator.machines.profiles import Answer, ProfileHandler
from simulator.ocpp.v16 import (
    ChargePointErrorCode,
    GetLocalListVersionRequest,
    GetLocalListVersionResponse,
    Profile,
    SendLocalListRequest,
    SendLocalListResponse,
    UpdateStatus,
)


class LocalAuthListHandler(ProfileHandler):
    """SendLocalList and GetLocalListVersion (see the module docstring)."""

    profile = Profile.LOCAL_AUTH_LIST_MANAGEMENT

    def answer(self, request: msgspec.Struct, now: float) -> Answer | None:
        """The response to one LocalAuthListManagement request."""
        ctx = self.ctx
        enabled = ctx.config.get_bool("LocalAuthListEnabled")
        match request:
            case GetLocalListVersionRequest():
                version = ctx.local_list.list_version() if enabled else -1
                return GetLocalListVersionResponse(list_version=version), None
            case SendLocalListRequest():
                status = ctx.local_list.apply(
                    request, enabled=enabled,
                    max_length=ctx.config.get_int("LocalAuthListMaxLength"),
                    send_max_length=ctx.config.get_int("SendLocalListMaxLength"),
                )
                ctx.note(now, "local_list_update", update_type=request.update_type.value,
                         list_version=request.list_version, status=status.value,
                         entries=len(ctx.local_list))
                followup = (lambda: self._clear_conflict(now)) \
                    if status == UpdateStatus.ACCEPTED else None
                return SendLocalListResponse(status=status), followup
        return None

    def _clear_conflict(self, now: float) -> None:
        error = self.ctx.errors.get(0)
        if error is not None and error.code == ChargePointErrorCode.LOCAL_LIST_CONFLICT:
            del self.ctx.errors[0]
            self.ctx.refresh_status(0, now)
