"""Kafka ACLs and SCRAM users derived from the topic registry (least privilege, deny by default).

:func:`desired_grants` starts from :func:`schemas.topics.acl_bindings` (READ+DESCRIBE on a topic
for its readers, WRITE+DESCRIBE for its writers, READ on the consumer group named after each
reader) and adds what the registry does not know about:

* the workers' consumer groups ``novamind-workers`` (the pipeline) and
  ``novamind-workers-safety`` (the item-9 watch): READ;
* the workers' transactional ids (``novamind-workers-<replica>``: a batch's outputs, window
  state and offsets commit in one transaction): WRITE and DESCRIBE on that PREFIXED pattern;
* nothing for idempotent producers: since Kafka 3.0 (KIP-679) WRITE on any topic implies
  IDEMPOTENT_WRITE on the cluster, so no cluster-wide grant is needed (the ACL tests produce
  with ``enable.idempotence=true`` to prove it);
* no CREATE anywhere: every topic, the workers' changelog included, is declared in the
  registry and created by the operator (``novamind topics create``).

:func:`apply_grants` and :func:`create_scram_users` talk to the cluster as ``User:admin``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)

from novamind.platform.privacy.exceptions import AclError
from schemas.topics import SAFETY_GROUP, WORKERS_GROUP, Principal, TopicSpec, acl_bindings

WORKERS_GROUPS = (WORKERS_GROUP, SAFETY_GROUP)
WORKERS_TRANSACTIONAL_PREFIX = f"{WORKERS_GROUP}-"
SCRAM_ITERATIONS = 8192


@dataclass(frozen=True, order=True)
class Grant:
    """Allow ``principal`` ``operation`` on a resource (a name or, PREFIXED, a name prefix)."""

    principal: str  # "User:<name>"
    resource_type: str  # TOPIC | GROUP | TRANSACTIONAL_ID
    resource_name: str
    operation: str  # READ | WRITE | CREATE | DESCRIBE ...
    pattern: str = "LITERAL"  # LITERAL | PREFIXED

    def to_binding(self) -> AclBinding:
        """The confluent-kafka binding (allowed from any host)."""
        return AclBinding(
            ResourceType[self.resource_type],
            self.resource_name,
            ResourcePatternType[self.pattern],
            self.principal,
            "*",
            AclOperation[self.operation],
            AclPermissionType.ALLOW,
        )

    @classmethod
    def from_binding(cls, binding: AclBinding) -> Grant:
        return cls(
            binding.principal,
            _enum_name(binding.restype),
            binding.name,
            _enum_name(binding.operation),
            _enum_name(binding.resource_pattern_type),
        )


def _enum_name(value: object) -> str:
    # confluent-kafka normalises these fields to enums; its stubs also allow str and int.
    return str(getattr(value, "name", value))


def user(principal: Principal | str) -> str:
    return f"User:{principal}"


def desired_grants(topics: tuple[TopicSpec, ...] | None = None) -> list[Grant]:
    """Every ALLOW grant the pipeline's principals need, sorted and without duplicates."""
    grants = {Grant(b.principal, b.resource_type, b.resource_name, b.operation) for b in acl_bindings(topics)}
    workers = user(Principal.WORKERS)
    for group in WORKERS_GROUPS:
        grants.add(Grant(workers, "GROUP", group, "READ"))
    for operation in ("WRITE", "DESCRIBE"):
        grants.add(Grant(workers, "TRANSACTIONAL_ID", WORKERS_TRANSACTIONAL_PREFIX, operation, "PREFIXED"))
    return sorted(grants)


def acl_drift(existing: Iterable[Grant], desired: Iterable[Grant]) -> tuple[list[Grant], list[Grant]]:
    """``(missing, extra)``: grants to create, and grants present but not declared (reported,
    for an operator to review; never removed automatically)."""
    have, want = set(existing), set(desired)
    return sorted(want - have), sorted(have - want)


def existing_grants(admin: AdminClient, *, timeout: float = 15.0) -> list[Grant]:
    """Every ACL on the cluster, as grants."""
    # None is the documented "any" of a filter; the stubs only allow str.
    match_all = AclBindingFilter(
        ResourceType.ANY,
        None,  # type: ignore[arg-type]
        ResourcePatternType.ANY,
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    try:
        bindings = admin.describe_acls(match_all, request_timeout=timeout).result(timeout=timeout)
    except KafkaException as exc:
        raise AclError(f"could not list the ACLs: {exc}") from exc
    return sorted(Grant.from_binding(b) for b in bindings)


def apply_grants(admin: AdminClient, grants: Iterable[Grant], *, timeout: float = 15.0) -> int:
    """Create the grants (creating an existing ACL is a no-op) and return once the broker
    enforces them; returns how many were sent.

    The controller acknowledges CreateAcls when the metadata log has the records; the broker's
    authorizer applies them when it replays that log, a moment later. A client let in between
    gets TOPIC_AUTHORIZATION_FAILED, which a producer does not retry, so this waits until
    DescribeAcls (answered by the broker's authorizer) lists every grant.
    """
    wanted = list(grants)
    bindings = [grant.to_binding() for grant in wanted]
    if not bindings:
        return 0
    futures = admin.create_acls(bindings, request_timeout=timeout)
    failures = []
    for binding, future in futures.items():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            failures.append(f"{Grant.from_binding(binding)}: {exc}")
    if failures:
        raise AclError("Kafka refused ACLs:\n" + "\n".join(failures))
    _wait_enforced(admin, wanted, timeout=timeout)
    return len(bindings)


def _wait_enforced(admin: AdminClient, grants: list[Grant], *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        missing, _ = acl_drift(existing_grants(admin, timeout=timeout), grants)
        if not missing:
            return
        if time.monotonic() >= deadline:
            raise AclError(
                f"the broker does not enforce {len(missing)} created ACL(s) after {timeout:.0f} s, "
                f"first: {missing[0]}"
            )
        time.sleep(0.1)


def create_scram_users(
    admin: AdminClient,
    passwords: Mapping[str, str],
    *,
    iterations: int = SCRAM_ITERATIONS,
    timeout: float = 15.0,
) -> None:
    """Create or reset SCRAM-SHA-512 credentials (user name -> password)."""
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, iterations)
    upserts: list[UserScramCredentialAlteration] = [
        UserScramCredentialUpsertion(name, info, password.encode()) for name, password in passwords.items()
    ]
    if not upserts:
        return
    futures = admin.alter_user_scram_credentials(upserts, request_timeout=timeout)
    failures = []
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            failures.append(f"{name}: {exc}")
    if failures:
        raise AclError("Kafka refused SCRAM credentials:\n" + "\n".join(failures))
