"""Every exchange, queue and routing key, in one place.

One durable topic exchange carries all events. Each service has one durable quorum queue bound to
the routing keys it handles, classic delay queues (one per retry tier, with a TTL, dead-lettering
back into the service queue) and a dead-letter queue. Names are prefixed by a namespace
(``DEARMP_BROKER_NAMESPACE``, default ``dearmp``) so tests and side-by-side deployments are isolated.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared import messages as m

SERVICES = ("intake", "resolver", "mailer", "updates")

# Which events each service's queue receives. Every event type must be consumed by someone.
BINDINGS: dict[str, tuple[str, ...]] = {
    "intake": (
        m.SignatureResolved.TYPE,
        m.SignatureUnresolvable.TYPE,
        m.SignatureHeld.TYPE,
        m.LetterSent.TYPE,
        m.LetterFailed.TYPE,
        m.SupporterErasureRequested.TYPE,
        m.SupporterErased.TYPE,
    ),
    "resolver": (m.SignatureConfirmed.TYPE, m.SupporterErasureRequested.TYPE),
    "mailer": (
        m.SignatureReceived.TYPE,
        m.SignatureConfirmed.TYPE,  # so the reminder is not sent to those who confirmed
        m.SignatureResolved.TYPE,
        m.SignatureUnresolvable.TYPE,
        m.SignatureHeld.TYPE,
        m.SignatureRepeated.TYPE,
        m.SupporterErasureRequested.TYPE,
        m.ReplyAnswered.TYPE,  # no reminder of "Has your MP replied?" after yes or no
        m.HelpRequested.TYPE,  # "Can't sign? Tell us": the acknowledgement, the staff notice
        m.HelpReplied.TYPE,  # a staff member's answer to it
    ),
    "updates": (
        m.SignatureConfirmed.TYPE,
        m.LetterSent.TYPE,  # for the webhooks of organisations whose supporters opted in
        m.SupporterErasureRequested.TYPE,
        m.UpdatePublished.TYPE,
        m.SubscriptionChanged.TYPE,
    ),
}

# A message that keeps killing its consumer is dead-lettered by the broker after this many
# deliveries (quorum queue x-delivery-limit); handled failures go to the DLQ far sooner.
DELIVERY_LIMIT = 20


@dataclass(frozen=True)
class Topology:
    namespace: str = "dearmp"

    @property
    def events_exchange(self) -> str:
        return f"{self.namespace}.events"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.namespace}.dlx"

    def queue(self, service: str) -> str:
        return f"{self.namespace}.{service}"

    def dead_letter_queue(self, service: str) -> str:
        return f"{self.namespace}.{service}.dlq"

    def retry_queue(self, service: str, delay_ms: int) -> str:
        # Quorum delay queues. Before, classic queues named ``.retry.<ms>ms``: a deployment
        # upgraded from them finds those drain into the service's queue by themselves.
        return f"{self.namespace}.{service}.delay.{delay_ms}ms"

    def all_queues(self, retry_delays: list[int]) -> list[str]:
        names = []
        for service in SERVICES:
            names += [self.queue(service), self.dead_letter_queue(service)]
            names += [self.retry_queue(service, d) for d in retry_delays]
        return names
