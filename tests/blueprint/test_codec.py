"""TOML <-> JSON codec: upstream's key order, omitempty, layout, sizes, unknown keys, type errors."""

from __future__ import annotations

import json
import tomllib

import pytest
from testdata import data_file

from osbuildd.blueprint import Blueprint, BlueprintError, Customizations
from osbuildd.blueprint.codec import encode

# A blueprint that sets every customization upstream has (each section at least once).
EVERYTHING = {
    "name": "everything",
    "description": "all fields",
    "version": "1.2.3",
    "packages": [{"name": "tmux", "version": "*"}, {"name": "httpd", "version": "2.4.*"}, {"name": "vim"}],
    "modules": [{"name": "nodejs", "version": "18"}],
    "enabled_modules": [{"name": "nodejs", "stream": "18"}],
    "groups": [{"name": "core"}],
    "containers": [{"source": "quay.io/x/y:latest", "name": "y", "tls-verify": False, "local-storage": True}],
    "customizations": {
        "hostname": "host.example",
        "kernel": {"name": "kernel-debug", "append": "nosmt=force"},
        "sshkey": [{"user": "root", "key": "ssh-ed25519 AAAA root"}],
        "user": [{"name": "admin", "description": "Admin", "password": "$6$abc$def", "key": "ssh-ed25519 AAAA a",
                  "home": "/srv/admin", "shell": "/bin/bash", "groups": ["wheel", "adm"], "uid": 1200,
                  "gid": 1200, "expiredate": 12345, "force_password_reset": True}],
        "group": [{"name": "admin", "gid": 1200}, {"name": "nogid"}],
        "timezone": {"timezone": "Europe/Prague", "ntpservers": ["0.pool.ntp.org"]},
        "locale": {"languages": ["en_US.UTF-8", "cs_CZ.UTF-8"], "keyboard": "us"},
        "firewall": {"ports": ["22:tcp", "8000-8080:tcp", "imap:tcp"],
                     "services": {"enabled": ["ssh"], "disabled": ["telnet"]},
                     "zones": [{"name": "trusted", "sources": ["10.0.0.0/8"]}]},
        "services": {"enabled": ["sshd"], "disabled": ["cups"], "masked": ["rpcbind"]},
        "filesystem": [{"mountpoint": "/var", "minsize": 2147483648}],
        "disk": {"type": "gpt", "minsize": 21474836480,
                 "partitions": [
                     {"type": "plain", "minsize": 1073741824,
                      "part_type": "0fc63daf-8483-4772-8e79-3d69d8477de4", "part_label": "DATA",
                      "part_uuid": "6264d520-3fb9-423f-8ab8-7a0a8e3d3562",
                      "mountpoint": "/data", "label": "data", "fs_type": "xfs"},
                     {"type": "lvm", "minsize": 10737418240, "name": "vg0",
                      "logical_volumes": [{"name": "lv-root", "minsize": 5368709120, "mountpoint": "/",
                                           "label": "root", "fs_type": "ext4"},
                                          {"name": "swap", "minsize": 1073741824, "fs_type": "swap"}]},
                     {"type": "btrfs", "minsize": 2147483648,
                      "subvolumes": [{"name": "home", "mountpoint": "/home"}, {"name": "srv", "mountpoint": "/srv"}]},
                 ],
                 "start_offset": 1048576, "sector_size": 4096},
        "installation_device": "/dev/vda",
        "partitioning_mode": "lvm",
        "fdo": {"manufacturing_server_url": "http://fdo.example:8080", "diun_pub_key_insecure": "true",
                "diun_pub_key_hash": "sha256:abc", "diun_pub_key_root_certs": "certs",
                "di_mfg_string_type_mac_iface": "eth0"},
        "openscap": {"datastream": "/usr/share/xml/scap/ds.xml", "profile_id": "cis",
                     "tailoring": {"selected": ["a"], "unselected": ["b"]},
                     "json_tailoring": {"profile_id": "p", "filepath": "/t.json"}, "policy_id": "pol"},
        "ignition": {"embedded": {"config": "eyJ9"}, "firstboot": {"url": "http://ign.example"}},
        "directories": [{"path": "/etc/app", "user": "root", "group": 0, "mode": "0755", "ensure_parents": True}],
        "files": [{"path": "/etc/app/conf", "user": 0, "group": "root", "mode": "0600",
                   "data": "line \"one\"\n\ttab\\ and \u0001 ctl and ünïcode\n"}],
        "repositories": [{"id": "extra", "baseurls": ["https://example.com/repo"], "gpgkeys": ["https://example.com/key"],
                          "metalink": "https://example.com/metalink", "mirrorlist": "https://example.com/ml",
                          "name": "Extra", "priority": 10, "enabled": True, "gpgcheck": True,
                          "repo_gpgcheck": False, "sslverify": True, "module_hotfixes": False,
                          "filename": "extra.repo", "install_from": True}],
        "fips": False,
        "installer": {"unattended": True, "sudo-nopasswd": ["%wheel"],
                      "modules": {"enable": ["org.fedoraproject.Anaconda.Modules.Localization"], "disable": ["x"]},
                      "menu-timeout": 5, "bootloader": {"grub2": {"menu-timeout": 3}},
                      "payload": {"kind": "dnf", "packages": ["a"]}},
        "rpm": {"import_keys": {"files": ["/etc/pki/rpm-gpg/RPM-GPG-KEY"]}},
        "rhsm": {"config": {"dnf_plugins": {"product_id": {"enabled": True}, "subscription_manager": {"enabled": False}},
                            "subscription_manager": {"rhsm": {"manage_repos": True, "auto_enable_yum_plugins": False},
                                                     "rhsmcertd": {"auto_registration": True}}}},
        "cacerts": {"pem_certs": ["-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"]},
        "containers-storage": {"destination-path": "/usr/share/containers/storage"},
        "firstboot": {"type": "custom", "name": "hello", "ignore_failure": True, "custom_contents": "echo hi",
                      "satellite_cacerts": ["c"], "satellite_command": "curl", "aap_cacerts": ["d"],
                      "aap_job_template_url": "https://aap/cb", "aap_host_config_key": "k",
                      "scripts": [{"type": "custom", "name": "s1", "after": ["network-online.target"],
                                   "before": ["x"], "contents": "#!/bin/sh\ntrue\n"}]},
        "dnf": {"config": {"set_releasever": True}},
        "iso": {"application_id": "app", "publisher": "me", "volume_id": "VOL"},
        "sshd": {"password_authentication": False, "challenge_response_authentication": False,
                 "kbd_interactive_authentication": False, "client_alive_interval": 30,
                 "permit_root_login": "prohibit-password"},
    },
    "distro": "debian-12",
    "architecture": "x86_64",
    "minimal": True,
}


def all_customization_keys() -> set[str]:
    from dataclasses import fields

    return {f.metadata["key"] for f in fields(Customizations) if "key" in f.metadata}


def test_everything_covers_every_customization_and_round_trips() -> None:
    bp = Blueprint.from_json(json.dumps(EVERYTHING))
    assert bp.unknown_keys == []
    assert set(bp.customizations.used()) == all_customization_keys()
    # JSON out is the input (it is already in upstream's key order with every omitempty field set)
    assert json.dumps(bp.to_dict()) == json.dumps(EVERYTHING)
    toml_text = bp.to_toml()
    again = Blueprint.from_toml(toml_text)
    assert again.unknown_keys == []
    assert json.dumps(again.to_dict()) == json.dumps(EVERYTHING)
    assert again.to_toml() == toml_text
    # what we write is TOML that a strict parser reads back to the same data
    assert tomllib.loads(toml_text) == bp.to_dict()
    assert again == bp


def test_recorded_toml_push_then_info(recorded) -> None:
    """An upstream recording: the TOML pushed (006) comes back as JSON (014) and TOML (015)."""
    bp = Blueprint.from_toml(recorded("006")["request"]["body"])
    bp.initialize()
    assert bp.to_dict() == recorded("014")["response"]["body"]["blueprints"][0]
    assert bp.to_toml() == recorded("015")["response"]["body"]
    assert list(bp.to_dict()) == list(recorded("014")["response"]["body"]["blueprints"][0])


def test_recorded_json_push_then_info(recorded) -> None:
    bp = Blueprint.from_json(recorded("007")["request"]["body"])
    bp.initialize()
    expected = recorded("016")["response"]["body"]["blueprints"][0]
    assert bp.to_dict() == expected
    assert json.dumps(bp.to_dict()) == json.dumps(expected)  # key order too


def test_all_customizations_reference_blueprint() -> None:
    data = json.loads(data_file("images", "configs", "all-customizations.json").read_text())["blueprint"]
    bp = Blueprint.from_json(data)
    assert bp.unknown_keys == []
    assert bp.validate() == []  # its repository key and CA certificate are real
    out = bp.to_dict()
    # upstream writes sizes as bytes and the non-omitempty lists always
    expected = json.loads(json.dumps(data))
    expected["enabled_modules"] = []
    units = {"MiB": 1024**2, "GiB": 1024**3}
    for fs in expected["customizations"]["filesystem"]:
        if isinstance(fs["minsize"], str):
            fs["minsize"] = int(fs["minsize"][:-3]) * units[fs["minsize"][-3:]]
    assert out == expected
    assert out["customizations"]["filesystem"][1]["minsize"] == 500 * 1024**2
    # user/group owners keep their types (int vs name)
    files = out["customizations"]["files"]
    assert files[2]["user"] == "root" and files[3]["user"] == 0
    # TOML round trip keeps everything, including multi-line file data and the PGP key
    again = Blueprint.from_toml(bp.to_toml())
    assert again.to_dict() == out
    assert Blueprint.from_json(json.dumps(out)).to_dict() == out


def test_omitempty_pointer_versus_value() -> None:
    bp = Blueprint.from_json({"name": "x", "customizations": {
        "fips": False, "directories": [{"path": "/d", "ensure_parents": False}],
        "user": [{"name": "u", "uid": 0, "groups": []}], "installation_device": ""}})
    c = bp.to_dict()["customizations"]
    assert c["fips"] is False                       # *bool: set to false is kept
    assert c["directories"] == [{"path": "/d"}]     # bool value false is dropped
    assert c["user"] == [{"name": "u", "uid": 0}]   # *int 0 kept, empty list dropped
    assert "installation_device" not in c
    assert "fips = false" in bp.to_toml()


def test_empty_blueprint_toml_layout() -> None:
    bp = Blueprint(name="empty")
    bp.initialize()
    assert bp.to_toml() == ('name = "empty"\nversion = "0.0.0"\npackages = []\nmodules = []\n'
                            'enabled_modules = []\ngroups = []\n')
    assert bp.to_dict() == {"name": "empty", "version": "0.0.0", "packages": [], "modules": [],
                            "enabled_modules": [], "groups": []}


def test_toml_strings_are_escaped_and_read_back() -> None:
    data = 'quote " backslash \\ newline \n tab \t bell \x07 del \x7f unicode ☃'
    bp = Blueprint.from_json({"name": "x", "customizations": {"files": [{"path": "/f", "data": data}],
                                                               "hostname": "a\"b"}})
    text = bp.to_toml()
    assert "\n tab" not in text  # newlines inside strings are escaped, one line per key
    assert Blueprint.from_toml(text).customizations.files[0].data == data
    assert tomllib.loads(text)["customizations"]["hostname"] == 'a"b'


def test_unknown_keys_are_ignored_but_reported() -> None:
    bp = Blueprint.from_toml('name = "x"\nfoo = 1\n[customizations]\nhostnme = "typo"\n'
                             '[[customizations.user]]\nname = "u"\npasword = "p"\n')
    assert bp.to_dict() == {"name": "x", "packages": [], "modules": [], "enabled_modules": [], "groups": [],
                            "customizations": {"user": [{"name": "u"}]}}
    warnings = bp.validate()
    assert bp.unknown_keys == ["foo", "customizations.hostnme", "customizations.user[0].pasword"]
    assert len(warnings) == 3 and "customizations.hostnme" in warnings[1]


def test_keys_match_case_insensitively_as_go() -> None:
    bp = Blueprint.from_json({"Name": "x", "Packages": [{"NAME": "vim"}]})
    assert bp.name == "x" and bp.packages[0].name == "vim" and bp.unknown_keys == []


@pytest.mark.parametrize(("value", "expected"), [
    (2147483648, 2147483648), ("2 GiB", 2 * 1024**3), ("500MiB", 500 * 1024**2), ("1 GB", 10**9),
    ("4096", 4096), ("10 kB", 10_000), ("3 KiB", 3072), ("1 TiB", 1024**4),
])
def test_filesystem_minsize_int_or_string(value, expected) -> None:
    bp = Blueprint.from_json({"name": "x", "customizations": {"filesystem": [{"mountpoint": "/var", "minsize": value}]}})
    assert bp.customizations.filesystem[0].minsize == expected
    assert bp.to_dict()["customizations"]["filesystem"][0]["minsize"] == expected


def test_filesystem_toml_size_alias_and_errors() -> None:
    bp = Blueprint.from_toml('name = "x"\n[[customizations.filesystem]]\nmountpoint = "/var"\nsize = "1 GiB"\n')
    assert bp.customizations.filesystem[0].minsize == 1024**3 and bp.unknown_keys == []
    with pytest.raises(BlueprintError) as e:
        Blueprint.from_toml('name = "x"\n[[customizations.filesystem]]\nmountpoint = "/v"\nsize = 1\nminsize = 2\n')
    assert e.value.message == "TOML unmarshal: size and minsize cannot both be set (size is an alias for minsize)"
    with pytest.raises(BlueprintError) as e:
        Blueprint.from_toml('name = "x"\n[[customizations.filesystem]]\nmountpoint = "/v"\n')
    assert e.value.message == "TOML unmarshal: minsize must be greater than 0, got 0"
    with pytest.raises(BlueprintError) as e:
        Blueprint.from_json({"name": "x", "customizations": {"filesystem": [{"mountpoint": 7, "minsize": 1}]}})
    assert e.value.message == "JSON unmarshal: mountpoint must be string, got 7 of type int64"
    assert e.value.field == "customizations.filesystem[0].mountpoint"
    with pytest.raises(BlueprintError) as e:
        Blueprint.from_json({"name": "x", "customizations": {"filesystem": [{"mountpoint": "/v", "minsize": "2 XB"}]}})
    assert e.value.field == "customizations.filesystem[0].minsize" and "unknown data size units" in e.value.message


@pytest.mark.parametrize(("doc", "field", "message"), [
    ({"name": 5}, "name", "json: cannot unmarshal number into Go struct field Blueprint.name of type string"),
    ({"name": "x", "packages": {"name": "a"}}, "packages",
     "json: cannot unmarshal object into Go struct field Blueprint.packages of type []blueprint.Package"),
    ({"name": "x", "customizations": {"user": [{"name": "u", "uid": "1000"}]}}, "customizations.user[0].uid",
     "json: cannot unmarshal string into Go struct field UserCustomization.customizations.user.uid of type int"),
    ({"name": "x", "customizations": {"fips": "yes"}}, "customizations.fips",
     "json: cannot unmarshal string into Go struct field Customizations.customizations.fips of type bool"),
    ({"name": "x", "customizations": {"directories": [{"path": "/d", "user": 1.5}]}},
     "customizations.directories[0].user", "invalid user 1.500000: must be an integer"),
    ({"name": "x", "customizations": {"files": [{"path": "etc/x"}]}}, "customizations.files[0].path",
     "path 'etc/x' must be absolute"),
    ({"name": "x", "customizations": {"files": [{"path": "/etc/../x"}]}}, "customizations.files[0].path",
     "path '/etc/../x' must be canonical"),
    ({"name": "x", "customizations": {"directories": [{"path": "/d", "mode": "0999"}]}},
     "customizations.directories[0].mode", "invalid mode 0999: must be an octal number"),
    ({"name": "x", "customizations": {"disk": {"partitions": [{"type": "zfs", "minsize": 1}]}}},
     "customizations.disk.partitions[0].type", "JSON unmarshal: unknown partition type: zfs"),
    ({"name": "x", "customizations": {"disk": {"partitions": [{"mountpoint": "/x"}]}}},
     "customizations.disk.partitions[0].minsize", "minsize is required"),
    ({"name": "x", "customizations": {"disk": {"partitions": [{"type": "btrfs", "minsize": 1, "mountpoint": "/"}]}}},
     "customizations.disk.partitions[0].mountpoint",
     'JSON unmarshal: error decoding partition with type "btrfs": json: unknown field "mountpoint"'),
])
def test_type_and_field_errors_name_the_field(doc, field, message) -> None:
    with pytest.raises(BlueprintError) as e:
        Blueprint.from_json(json.dumps(doc))
    assert e.value.field == field
    assert e.value.message == message


def test_toml_type_error_names_the_field() -> None:
    with pytest.raises(BlueprintError) as e:
        Blueprint.from_toml('name = "x"\n[customizations]\nhostname = 5\n')
    assert e.value.field == "customizations.hostname"
    assert "TOML value has type int64; destination has type string" in e.value.message


def test_syntax_errors_use_upstream_wording(recorded) -> None:
    rec = recorded("008")
    with pytest.raises(BlueprintError) as e:
        Blueprint.from_toml(rec["request"]["body"])
    prefix = "400 Bad Request: The browser (or proxy) sent a request that this server could not understand: "
    assert prefix + e.value.message == rec["response"]["body"]["errors"][0]["msg"]
    with pytest.raises(BlueprintError) as e:
        Blueprint.from_json('{"name":"test","description":"Test","packages:}')
    assert e.value.message == "unexpected EOF" and e.value.field == ""
    with pytest.raises(BlueprintError) as e:
        Blueprint.from_json("[1]")
    assert e.value.message == "json: cannot unmarshal array into Go value of type blueprint.Blueprint"


def test_encode_is_struct_order() -> None:
    bp = Blueprint.from_json({"architecture": "aarch64", "distro": "debian-12", "groups": [], "name": "x",
                              "version": "1.0.0", "description": "d"})
    assert list(bp.to_dict()) == ["name", "description", "version", "packages", "modules", "enabled_modules",
                                  "groups", "distro", "architecture"]
    assert list(encode(bp.packages[0] if bp.packages else Blueprint.from_json({"name": "p"}))) == [
        "name", "packages", "modules", "enabled_modules", "groups"]


def test_hostile_documents_are_clear_errors() -> None:
    with pytest.raises(BlueprintError) as e:
        Blueprint.from_json('{"a":' * 100_000)
    assert e.value.field == ""
    with pytest.raises(BlueprintError):
        Blueprint.from_toml("a = " + "[" * 5000 + "]" * 5000)
    with pytest.raises(BlueprintError) as e:
        Blueprint.from_json({"name": "x", "customizations": {"user": [{"name": "u", "uid": 2**70}]}})
    assert e.value.field == "customizations.user[0].uid"
    with pytest.raises(BlueprintError) as e:
        Blueprint.from_json(b'{"name": "\xff"}')
    assert e.value.field == ""
    with pytest.raises(BlueprintError) as e:
        Blueprint.from_toml('name = 1979-05-27T07:32:00Z\n')
    assert e.value.field == "name" and "TOML value has type datetime" in e.value.message


def test_toml_layout_of_nested_tables() -> None:
    """BurntSushi (Indent=""): blank line before top-level tables and every [[array]] entry, none
    before nested [a.b] tables; plain keys before sub-tables."""
    bp = Blueprint.from_json({"name": "x", "customizations": {
        "hostname": "h", "kernel": {"append": "a"}, "user": [{"name": "u"}], "services": {"enabled": ["s"]},
        "disk": {"partitions": [{"minsize": 1, "mountpoint": "/"},
                                {"type": "lvm", "minsize": 2, "logical_volumes": [{"name": "a", "minsize": 1}]}]}}})
    assert bp.to_toml() == (
        'name = "x"\npackages = []\nmodules = []\nenabled_modules = []\ngroups = []\n'
        '\n[customizations]\nhostname = "h"\n[customizations.kernel]\nappend = "a"\n'
        '\n[[customizations.user]]\nname = "u"\n[customizations.services]\nenabled = ["s"]\n'
        '[customizations.disk]\n'
        '\n[[customizations.disk.partitions]]\ntype = "plain"\nminsize = 1\nmountpoint = "/"\n'
        '\n[[customizations.disk.partitions]]\ntype = "lvm"\nminsize = 2\n'
        '\n[[customizations.disk.partitions.logical_volumes]]\nname = "a"\nminsize = 1\n')
    assert Blueprint.from_toml(bp.to_toml()) == bp
