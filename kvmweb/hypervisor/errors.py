"""Our own exceptions, and the one place that turns libvirt's errors into them.

Every other module of the hypervisor layer raises these; callers above it never see ``libvirt.libvirtError``.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from urllib.parse import urlsplit

import libvirt


class HypervisorError(Exception):
    """Base of every error the hypervisor layer raises. ``code`` is a stable machine-readable word."""

    code = "hypervisor_error"

    def __init__(self, detail: str, *, libvirt_code: int | None = None,
                 fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.libvirt_code = libvirt_code
        self.fields: dict[str, list[str]] = fields or {}  # form field → messages, where the input had a field


class HostUnavailable(HypervisorError):
    code = "host_unavailable"


class HostKeyChanged(HostUnavailable):
    """The SSH host key a host shows is not the one pinned in the portal's known_hosts."""

    code = "host_key_changed"


class NotFound(HypervisorError):
    code = "not_found"


class DomainNotFound(NotFound):
    code = "domain_not_found"


class VolumeNotFound(NotFound):
    code = "volume_not_found"


class PoolNotFound(NotFound):
    code = "pool_not_found"


class NetworkNotFound(NotFound):
    code = "network_not_found"


class SnapshotNotFound(NotFound):
    code = "snapshot_not_found"


class InvalidRequest(HypervisorError):
    """The request itself is wrong (bad XML, bad argument): asking again will not help."""

    code = "invalid_request"


class OperationInvalid(HypervisorError):
    """The object is in a state that does not allow this (start a running VM, for example)."""

    code = "operation_invalid"


class DomainNotRunning(OperationInvalid):
    """The action needs a running guest and this one is not running."""

    code = "not_running"


class AlreadyExists(HypervisorError):
    code = "already_exists"


class OperationFailed(HypervisorError):
    """libvirt tried and failed; ``detail`` carries its reason."""

    code = "operation_failed"


# libvirt error domains that mean "the connection is gone": the daemon restarted or the network broke.
_TRANSPORT_DOMAINS = {libvirt.VIR_FROM_RPC, libvirt.VIR_FROM_REMOTE}
_TRANSPORT_CODES = {libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_INVALID_CONN, libvirt.VIR_ERR_RPC}

_SSH_DOMAINS = {getattr(libvirt, "VIR_FROM_LIBSSH", 66), getattr(libvirt, "VIR_FROM_SSH", 50)}

_NOT_FOUND = {
    libvirt.VIR_ERR_NO_DOMAIN: DomainNotFound,
    libvirt.VIR_ERR_NO_STORAGE_VOL: VolumeNotFound,
    libvirt.VIR_ERR_NO_STORAGE_POOL: PoolNotFound,
    libvirt.VIR_ERR_NO_NETWORK: NetworkNotFound,
    libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT: SnapshotNotFound,
}

_INVALID = {
    libvirt.VIR_ERR_INVALID_ARG,
    libvirt.VIR_ERR_XML_ERROR,
    libvirt.VIR_ERR_XML_DETAIL,
    libvirt.VIR_ERR_CONFIG_UNSUPPORTED,
    libvirt.VIR_ERR_NO_SUPPORT,
    libvirt.VIR_ERR_INVALID_DOMAIN,
}


def _short(message: str) -> str:
    """libvirt prefixes messages with internal context ("Requested operation is not valid: ..."); keep the reason."""
    message = (message or "").strip()
    for prefix in (
        "Requested operation is not valid: ",
        "operation failed: ",
        "internal error: ",
        "invalid argument: ",
        "unsupported configuration: ",
    ):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message


def is_transport_error(exc: libvirt.libvirtError) -> bool:
    return exc.get_error_domain() in _TRANSPORT_DOMAINS or exc.get_error_code() in _TRANSPORT_CODES


def shorten_uri(uri: str) -> str:
    """A URI as people read it: without its query (the portal's key file and known_hosts paths)."""
    return uri.split("?", 1)[0]


def _ssh_address(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.hostname}:{parts.port or 22}"


def open_failure(exc: libvirt.libvirtError, *, uri: str) -> HostUnavailable:
    """Why opening a connection to ``uri`` failed, in words; the SSH transports' host-key and login failures get
    their own sentences (libssh's own text names a hex digest and a file)."""
    message = _short(exc.get_error_message() or str(exc))
    code = exc.get_error_code()
    if exc.get_error_domain() in _SSH_DOMAINS:
        address = _ssh_address(uri)
        if "differs from stored identity" in message or "HOST KEY VERIFICATION FAILED" in message:
            return HostKeyChanged(
                f"The SSH host key of {address} is not the one pinned when it was added: the host shows another "
                "key, so the portal does not connect (it could be someone in between). If the host was "
                "reinstalled, remove it and add it again.", libvirt_code=code)
        if "verify the session host key" in message or "not in the known hosts" in message.lower():
            return HostUnavailable(
                f"The SSH host key of {address} is not pinned in the portal's known_hosts: remove the host and add "
                "it again to pin its key.", libvirt_code=code)
        if "Access denied" in message or code == libvirt.VIR_ERR_AUTH_FAILED:
            return HostUnavailable(
                f"{address} refused the portal's SSH key: put the portal's public key (Hosts page) into the "
                "authorized_keys of the user in the URI on that host.", libvirt_code=code)
    return HostUnavailable(f"Cannot connect to {shorten_uri(uri)}: {message}", libvirt_code=code)


def translate(exc: libvirt.libvirtError, *, uri: str = "") -> HypervisorError:
    """Map one ``libvirtError`` to the exception of ours that says what it means to a person."""
    code = exc.get_error_code()
    message = _short(exc.get_error_message() or str(exc))
    if is_transport_error(exc) or code == libvirt.VIR_ERR_SYSTEM_ERROR and "connect" in message.lower():
        where = f" ({shorten_uri(uri)})" if uri else ""
        return HostUnavailable(f"The host{where} does not answer: {message}", libvirt_code=code)
    if code in _NOT_FOUND:
        return _NOT_FOUND[code](message, libvirt_code=code)
    if code == libvirt.VIR_ERR_OPERATION_INVALID:
        return OperationInvalid(message, libvirt_code=code)
    if code in _INVALID:
        return InvalidRequest(message, libvirt_code=code)
    if code in (libvirt.VIR_ERR_DOM_EXIST, libvirt.VIR_ERR_STORAGE_VOL_EXIST, libvirt.VIR_ERR_NETWORK_EXIST):
        return AlreadyExists(message, libvirt_code=code)
    if code == libvirt.VIR_ERR_OPERATION_TIMEOUT or code == libvirt.VIR_ERR_AGENT_UNRESPONSIVE:
        return OperationFailed(f"The host took too long: {message}", libvirt_code=code)
    return OperationFailed(message, libvirt_code=code)


@contextlib.contextmanager
def translated(*, uri: str = "") -> Iterator[None]:
    """``with translated(uri=...):`` turns any libvirtError raised inside into our exceptions."""
    try:
        yield
    except libvirt.libvirtError as exc:
        raise translate(exc, uri=uri) from exc
