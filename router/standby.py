"""A hot standby: wait for the active lock with the core kept restored, then take over.

While another router holds the active lock, this one follows what that router
commits into a core of its own (router/store/follow.py, router/domain/warm.py). Once
the lock is this router's, the core is caught up with the last changes committed
before it (the old router's session has ended: nothing more of its can commit) and
handed to the switchboard, which takes over from it (Switchboard.start(warm=True)).
Should the copy fail (a bug, not an outage), the takeover restores from PostgreSQL as
a cold start does, into a new core.
"""

from __future__ import annotations

import asyncio

import structlog

from router.api.servicer import ActiveSwitchboard
from router.domain import Router, RoutingPolicy
from router.errors import StoreUnavailable
from router.store import Store
from router.store.follow import OpenContacts

log = structlog.get_logger(__name__)


async def stand_by(store: Store, active: ActiveSwitchboard, policy: RoutingPolicy) -> Router | None:
    """Return holding the active lock (and `active` taking over: calls wait for it from
    the moment the lock is taken), with the core a standby kept warm and caught up, or
    None when the restore must read PostgreSQL (the lock was free at once: a cold
    start; or the copy is not to be trusted)."""
    following = await _stand_by(store, active, policy)
    if following is None or not await _caught_up(following):
        return None
    return following.router


async def _stand_by(
    store: Store, active: ActiveSwitchboard, policy: RoutingPolicy
) -> OpenContacts | None:
    """Hold the active lock; if another router held it, stand by until it is ours,
    keeping a warm core current meanwhile (returned, to be caught up)."""
    try:
        if await store.try_become_active():
            active.taking_over()
            return None
    except StoreUnavailable:
        pass  # an outage: wait for it to end, and for the lock, as a standby
    following = OpenContacts(store, Router(policy))
    # Loaded before waiting for the lock, so that a standby that says it waits is warm.
    try:
        await following.load()
    except StoreUnavailable:
        pass  # keep_current loads it once PostgreSQL answers
    except Exception as error:  # a bug must not keep the standby from taking over
        log.error("standby_load_failed", error=repr(error))
    keeping = asyncio.create_task(following.keep_current(), name="standby-follow")
    try:
        await store.become_active()
        active.taking_over()
    finally:
        keeping.cancel()
        try:
            await keeping
        except asyncio.CancelledError:
            pass
        except Exception as error:  # a bug: the core is not to be trusted
            log.error("standby_follow_failed", error=repr(error))
            following.loaded = False
    return following if following.loaded else None


async def _caught_up(following: OpenContacts) -> bool:
    """Apply every change committed before the takeover; False if PostgreSQL cannot
    say, or applying failed (the restore then reads it, as a cold start does)."""
    try:
        applied = await following.catch_up()
    except StoreUnavailable as error:
        log.warning("standby_catch_up_failed", error=str(error))
        return False
    except Exception as error:  # a bug: the core is not to be trusted, read it all
        log.error("standby_catch_up_failed", error=repr(error))
        return False
    log.info("standby_caught_up", events=applied, open_contacts=len(following), seq=following.seq)
    return True
