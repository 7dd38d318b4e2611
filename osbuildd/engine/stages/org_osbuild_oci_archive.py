"""org.osbuild.oci-archive: an OCI image archive (image layout in a tar) from the `base` tree.

Layers: the `base` tree, then `layer.1`, `layer.2`, ... trees in order. Blobs are gzip'd tars with
fixed gzip headers so the same tree gives the same digests; ``created`` honours SOURCE_DATE_EPOCH.
"""

from __future__ import annotations

import datetime
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tempfile

from osbuildd.engine.stageapi import StageArgs

DEFAULT_ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]


def _blob(layout: str, data: bytes) -> tuple[str, int]:
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest, len(data)


def _layer(layout: str, tree: str, workdir: str) -> tuple[str, int, str]:
    raw = os.path.join(workdir, "layer.tar")
    subprocess.run(["tar", "--numeric-owner", "--xattrs", "--acls", "--sort=name", "-C", tree, "-cf", raw, "."],
                   check=True)
    diff = hashlib.sha256()
    gz_path = os.path.join(workdir, "layer.tar.gz")
    with open(raw, "rb") as fin, open(gz_path, "wb") as fout:
        with gzip.GzipFile(filename="", mode="wb", fileobj=fout, mtime=0) as gz:
            while chunk := fin.read(1 << 20):
                diff.update(chunk)
                gz.write(chunk)
    os.unlink(raw)
    h = hashlib.sha256()
    with open(gz_path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    digest = h.hexdigest()
    size = os.path.getsize(gz_path)
    shutil.move(gz_path, os.path.join(layout, "blobs", "sha256", digest))
    return "sha256:" + digest, size, "sha256:" + diff.hexdigest()


def main(args: StageArgs) -> int:
    o = args.options
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    ts = float(epoch) if epoch is not None else datetime.datetime.now().timestamp()
    created = datetime.datetime.fromtimestamp(ts, datetime.UTC)
    created_s = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    names = ["base"] + sorted((n for n in args.inputs if n.startswith("layer.")), key=lambda n: int(n[6:]))
    with tempfile.TemporaryDirectory(dir=args.tree) as work:
        layout = os.path.join(work, "layout")
        os.makedirs(os.path.join(layout, "blobs", "sha256"))
        layers, diff_ids, history = [], [], []
        for name in names:
            digest, size, diff_id = _layer(layout, args.inputs[name]["path"], work)
            print(f"layer {name}: {digest} ({size} bytes)")
            layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": size})
            diff_ids.append(diff_id)
            history.append({"created": created_s, "created_by": "osbuildd-engine org.osbuild.oci-archive"})
        cfg = dict(o.get("config", {}))
        cfg.setdefault("Env", DEFAULT_ENV)
        cfg.setdefault("Cmd", ["sh"])
        for key in ("ExposedPorts", "Volumes"):  # lists in the options, sets (objects) in OCI
            if key in cfg:
                cfg[key] = {v: {} for v in cfg[key]}
        config = {"created": created_s, "architecture": o["architecture"], "os": "linux", "config": cfg,
                  "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": history}
        if "variant" in o:
            config["variant"] = o["variant"]
        cdigest, csize = _blob(layout, json.dumps(config, sort_keys=True).encode())
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdigest,
                               "size": csize},
                    "layers": layers}
        if o.get("annotations"):
            manifest["annotations"] = o["annotations"]
        mdigest, msize = _blob(layout, json.dumps(manifest, sort_keys=True).encode())
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdigest,
                                "size": msize, "platform": {"architecture": o["architecture"], "os": "linux"}}]}
        with open(os.path.join(layout, "index.json"), "w") as f:
            json.dump(index, f)
        with open(os.path.join(layout, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        dest = args.tree_path(o["filename"])
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        subprocess.run(["tar", "--sort=name", "--numeric-owner", "--owner=0", "--group=0", "-C", layout,
                        "-cf", dest, "."], check=True)
    print(f"wrote {o['filename']}: manifest {mdigest}")
    return 0
