"""User sources (``projects/source/*``) kept in the database (migration 0004), and system repos shown as sources."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from osbuildd.queue.db import DATA_CHANNEL

if TYPE_CHECKING:
    from osbuildd.distro import Repository
    from osbuildd.queue.db import Database


class SourceType(StrEnum):
    """Upstream's source types, and "deb" (osbuildd): an apt repository at `url` with `suite`,
    `components`, `signed_by`."""

    YUM_BASEURL = "yum-baseurl"
    YUM_MIRRORLIST = "yum-mirrorlist"
    YUM_METALINK = "yum-metalink"
    DEB = "deb"


# SourceConfig.type stays a plain string (what the client sent, checked against these)
SOURCE_TYPES = tuple(v.value for v in SourceType)


@dataclass
class SourceConfig:
    """Upstream's store SourceConfig (internal/store/json.go): the stored form of a source."""

    name: str
    type: str
    url: str
    check_gpg: bool = False
    check_ssl: bool = False
    system: bool = False
    proxy: str = ""
    gpgkeys: list[str] = field(default_factory=list)
    distros: list[str] = field(default_factory=list)
    rhsm: bool = False
    check_repogpg: bool = False
    suite: str = ""
    components: list[str] = field(default_factory=list)
    signed_by: str = ""

    def _deb_fields(self, out: dict[str, Any]) -> dict[str, Any]:
        if self.type == "deb":
            out["suite"] = self.suite
            out["components"] = self.components
            if self.signed_by:
                out["signed_by"] = self.signed_by
        return out

    def v0(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name, "type": self.type, "url": self.url, "check_gpg": self.check_gpg,
            "check_ssl": self.check_ssl, "system": self.system,
        }
        if self.proxy:
            out["proxy"] = self.proxy
        if self.gpgkeys:
            out["gpgkeys"] = self.gpgkeys
        return self._deb_fields(out)

    def v1(self, id: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": id, "name": self.name, "type": self.type, "url": self.url, "check_gpg": self.check_gpg,
            "check_ssl": self.check_ssl, "system": self.system,
        }
        if self.proxy:
            out["proxy"] = self.proxy
        if self.gpgkeys:
            out["gpgkeys"] = self.gpgkeys
        if self.distros:
            out["distros"] = self.distros
        out["rhsm"] = self.rhsm
        out["check_repogpg"] = self.check_repogpg
        return self._deb_fields(out)

    def toml_table(self) -> dict[str, Any]:
        """The store form as upstream's TOML encoder writes it (empty optional fields dropped)."""
        out: dict[str, Any] = {
            "name": self.name, "type": self.type, "url": self.url, "check_gpg": self.check_gpg,
            "check_ssl": self.check_ssl, "system": self.system, "rhsm": self.rhsm,
            "check_repogpg": self.check_repogpg,
        }
        if self.proxy:
            out["proxy"] = self.proxy
        if self.gpgkeys:
            out["GPGKeys"] = self.gpgkeys  # upstream's store struct has no toml tag on this field
        if self.distros:
            out["distros"] = self.distros
        return self._deb_fields(out)


def repo_source(repo: Repository) -> SourceConfig:
    """A distro's system repository as a (read-only) source."""
    if getattr(repo, "suite", None):
        kind, url = "deb", (repo.baseurl or [""])[0]
    elif repo.baseurl:
        kind, url = "yum-baseurl", repo.baseurl[0]
    elif repo.metalink:
        kind, url = "yum-metalink", repo.metalink
    else:
        kind, url = "yum-mirrorlist", repo.mirrorlist or ""
    return SourceConfig(
        name=repo.id, type=kind, url=url, check_gpg=bool(repo.check_gpg), check_ssl=True, system=True,
        gpgkeys=list(repo.gpgkeys or []), check_repogpg=bool(getattr(repo, "check_repogpg", False)),
        suite=getattr(repo, "suite", None) or "", components=list(getattr(repo, "components", None) or []),
        signed_by=getattr(repo, "signed_by", None) or "",
    )


def check_source(key: str, cfg: SourceConfig) -> None:
    """The repository grammar (osbuildd.distro.repocheck) on a source's fields; raises RepoCheckError
    naming the field with Weldr's field names (url, gpgkeys, ...)."""
    from osbuildd.distro import repocheck

    repocheck.check_id(key, "id")
    repocheck.check_name(cfg.name, "name")
    if cfg.proxy:
        repocheck.check_url(cfg.proxy, "proxy", allow_file=False)
    if cfg.type == "deb":
        repocheck.check_deb({"id": key, "name": cfg.name, "url": cfg.url, "suite": cfg.suite,
                             "components": cfg.components, "signed_by": cfg.signed_by,
                             "gpgkeys": cfg.gpgkeys}, url_field="url")
        return
    repocheck.check_url(cfg.url, "url")
    for k in cfg.gpgkeys:
        repocheck.check_gpgkey(k, "gpgkeys")


NOTIFY_PAYLOAD = "sources"   # on DATA_CHANNEL


class SourceStore:
    """User sources keyed by id (v1) — v0 clients key them by name, which upstream stores as the id.

    Nothing is kept in memory: every list reads the table, so changes by other daemons sharing the
    database show at once; each write still tells them (``"sources"`` on ``DATA_CHANNEL``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(self) -> list[tuple[str, SourceConfig]]:
        async with self.db.conn.execute("SELECT id, config FROM weldr_sources") as cur:
            rows = await cur.fetchall()
        # sorted here: PostgreSQL's ORDER BY follows the database's collation, SQLite's the bytes
        rows = sorted(rows, key=lambda r: r[0])
        known = set(SourceConfig.__dataclass_fields__)
        return [(r[0], SourceConfig(**{k: v for k, v in json.loads(r[1]).items() if k in known})) for r in rows]

    async def put(self, id: str, cfg: SourceConfig) -> None:
        """Add, or replace (this is how ``composer-cli sources change`` works)."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO weldr_sources (id, name, config) VALUES (?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET name = excluded.name, config = excluded.config",
                (id, cfg.name, json.dumps(asdict(cfg))),
            )
            await self.db.notify(DATA_CHANNEL, NOTIFY_PAYLOAD)

    async def delete_by_id(self, id: str) -> bool:
        return await self._delete("id", id)

    async def delete_by_name(self, name: str) -> bool:
        return await self._delete("name", name)

    async def _delete(self, column: str, value: str) -> bool:
        async with self.db.transaction() as conn:
            cur = await conn.execute(f"DELETE FROM weldr_sources WHERE {column} = ?", (value,))
            if cur.rowcount > 0:
                await self.db.notify(DATA_CHANNEL, NOTIFY_PAYLOAD)
                return True
            return False
