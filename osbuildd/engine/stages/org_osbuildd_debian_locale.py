"""org.osbuildd.debian.locale: Debian's /etc/default/locale, and the locale generated if needed."""

from __future__ import annotations

import os
import re

from osbuildd.engine.stageapi import StageArgs, TreeRoot, chroot_run

BUILTIN = {"C", "C.UTF-8", "C.utf8", "POSIX"}


def _charmap(tree: str, locale: str) -> str:
    supported = TreeRoot(tree).host_path("/usr/share/i18n/SUPPORTED")
    if os.path.exists(supported):
        for line in open(supported, encoding="utf-8"):
            parts = line.split()
            if len(parts) == 2 and parts[0] == locale:
                return parts[1]
    if re.search(r"\.(UTF-8|utf8)$", locale):
        return "UTF-8"
    raise SystemExit(f"locale {locale} is not a supported locale (not in /usr/share/i18n/SUPPORTED)")


def main(args: StageArgs) -> int:
    lang = args.options["language"]
    wanted = [lang, *args.options.get("additional", [])]
    with open(args.tree_path("/etc/default/locale"), "w", encoding="utf-8") as f:
        f.write(f"LANG={lang}\n")
    to_generate = [loc for loc in wanted if loc not in BUILTIN]
    if not to_generate:
        return 0
    if not os.path.exists(args.tree_path("/usr/sbin/locale-gen")):
        raise SystemExit(f"locale {lang} needs the 'locales' package in the image")
    gen = args.tree_path("/etc/locale.gen")
    text = open(gen, encoding="utf-8").read() if os.path.exists(gen) else ""
    for loc in to_generate:
        entry = f"{loc} {_charmap(args.tree, loc)}"
        pattern = re.compile(rf"^#\s*{re.escape(entry)}\s*$", re.M)
        if re.search(rf"^{re.escape(entry)}\s*$", text, re.M):
            continue
        if pattern.search(text):
            text = pattern.sub(entry, text)
        else:
            text += entry + "\n"
    with open(gen, "w", encoding="utf-8") as f:
        f.write(text)
    chroot_run(args.tree, ["locale-gen"])
    return 0
