"""TLS for the Cloud and worker API listeners (upstream's ``createTLSConfig``), and the client
certificate checks that follow the handshake.

The chain (CA, validity, purpose) is verified by OpenSSL during the handshake against ``ca``; a client
without a certificate, with one from another CA or an expired one never gets a connection. The leaf's
names are then checked against ``allowed_domains`` as Go's ``x509.Certificate.VerifyHostname`` does
(wildcards on the certificate's side, leftmost label only), once per connection (``osbuildd.api.auth``).
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from osbuildd.config import SecureListenerConfig


class TLSSetupError(ValueError):
    """A start-up problem with a section's certificate files, worded in one line."""


def server_context(settings: SecureListenerConfig, name: str) -> ssl.SSLContext:
    """The server context of a TCP listener with ``enable_tls``: TLS >= 1.2, the server's ``cert`` and
    ``key``, and with mTLS a required client certificate verified against ``ca`` (empty: the system
    trust store, as upstream). Blocking (reads files): call it through ``asyncio.to_thread``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(settings.cert, settings.key)
    except FileNotFoundError as exc:
        raise TLSSetupError(f"[{name}] cert/key: {exc.filename or settings.cert}: no such file") from None
    except PermissionError as exc:
        raise TLSSetupError(f"[{name}] cert/key: {exc.filename}: permission denied") from None
    except (ssl.SSLError, OSError) as exc:
        raise TLSSetupError(f"[{name}] cert = {settings.cert!r}, key = {settings.key!r}: not a PEM certificate "
                            f"and its private key ({_reason(exc)})") from None
    if settings.mtls:
        ctx.verify_mode = ssl.CERT_REQUIRED
        try:
            if settings.ca:
                ctx.load_verify_locations(cafile=settings.ca)
            else:
                ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        except FileNotFoundError:
            raise TLSSetupError(f"[{name}] ca: {settings.ca}: no such file") from None
        except (ssl.SSLError, OSError) as exc:
            raise TLSSetupError(f"[{name}] ca: {settings.ca}: not a PEM CA certificate ({_reason(exc)})") from None
    else:
        ctx.verify_mode = ssl.CERT_NONE   # JWT: TLS without client certificates (upstream's NoClientCert)
    return ctx


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).lower().replace("_", " ")
    return getattr(exc, "strerror", None) or str(exc)


# -- the leaf's names -----------------------------------------------------------------------------

@dataclass(frozen=True)
class PeerNames:
    dns: tuple[str, ...]
    ips: tuple[str, ...]
    common_name: str
    subject: str

    @classmethod
    def of(cls, cert: dict[str, Any]) -> PeerNames:
        """From ``SSLObject.getpeercert()``'s dictionary."""
        sans = cert.get("subjectAltName", ())
        dns = tuple(v for k, v in sans if k == "DNS")
        ips = tuple(v.strip() for k, v in sans if k == "IP Address")
        rdns = [(k, v) for rdn in cert.get("subject", ()) for k, v in rdn]
        cn = next((v for k, v in rdns if k == "commonName"), "")
        subject = ",".join(f"{_SHORT.get(k, k)}={v}" for k, v in rdns)
        return cls(dns, ips, cn, subject)

    def describe(self) -> str:
        names = [f"DNS:{d}" for d in self.dns] + [f"IP:{i}" for i in self.ips]
        return ", ".join(names) if names else f"CN={self.common_name}"

    def matches(self, host: str) -> bool:
        """Go's VerifyHostname(host); the subject's CN stands in only when there are no SANs at all."""
        candidate = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        try:
            ip = ipaddress.ip_address(candidate)
        except ValueError:
            pass
        else:
            return any(_same_ip(ip, x) for x in self.ips)
        name = host.lower()
        patterns: Iterable[str] = self.dns if (self.dns or self.ips) else ([self.common_name] if self.common_name else [])
        return any(_match_hostname(p, name) for p in patterns)

    def allowed(self, domains: Iterable[str]) -> bool:
        return any(self.matches(d) for d in domains)


_SHORT = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU", "countryName": "C",
          "localityName": "L", "stateOrProvinceName": "ST", "emailAddress": "emailAddress"}


def _same_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, text: str) -> bool:
    try:
        other = ipaddress.ip_address(text)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(other, ipaddress.IPv6Address) and other.ipv4_mapped is not None:
        other = other.ipv4_mapped
    return ip == other


def _match_hostname(pattern: str, host: str) -> bool:
    """Go's matchHostnames: same number of labels, ``*`` only as the whole leftmost label."""
    pattern, host = pattern.lower().removesuffix("."), host.removesuffix(".")
    if not pattern or not host:
        return False
    p_labels, h_labels = pattern.split("."), host.split(".")
    if len(p_labels) != len(h_labels):
        return False
    return all((i == 0 and p == "*") or p == h for i, (p, h) in enumerate(zip(p_labels, h_labels, strict=True)))
