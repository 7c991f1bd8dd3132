"""Collector settings: the fingerprint key from a file, the way the agents read it."""

from __future__ import annotations

import pytest

from foothold.collector.config import ConfigError, load_settings

KEY = "deployment-key-0123456789"


@pytest.fixture(autouse=True)
def no_key_in_the_environment(monkeypatch):
    monkeypatch.delenv("FOOTHOLD_FINGERPRINT_KEY", raising=False)
    monkeypatch.delenv("FOOTHOLD_FINGERPRINT_KEY_FILE", raising=False)


def test_fingerprint_key_file_from_yaml_or_environment(tmp_path, monkeypatch):
    key_file = tmp_path / "fingerprint.key"
    key_file.write_text(f"  {KEY}\n")
    config = tmp_path / "foothold.yaml"
    config.write_text(f"fingerprint_key_file: {key_file}\n")
    from_yaml = load_settings(config, data_dir=tmp_path)
    monkeypatch.setenv("FOOTHOLD_FINGERPRINT_KEY_FILE", str(key_file))
    from_env = load_settings(data_dir=tmp_path)
    for settings in (from_yaml, from_env):
        assert settings.fingerprint_key.get_secret_value() == KEY  # surrounding whitespace dropped, as agents do
        assert KEY not in repr(settings) and KEY not in str(settings)


@pytest.mark.parametrize(
    ("content", "with_key", "message"),
    [
        (
            None,
            False,
            r"fingerprint_key_file: FOOTHOLD_FINGERPRINT_KEY_FILE=\S+absent.key: cannot read the fingerprint key",
        ),
        ("\n", False, r"fingerprint_key_file: FOOTHOLD_FINGERPRINT_KEY_FILE=\S+: the file is empty"),
        (b"\xff\xfe" + KEY.encode(), False, r"fingerprint_key_file \S+ does not hold UTF-8 text"),
        (
            KEY,
            True,
            r"fingerprint_key \(FOOTHOLD_FINGERPRINT_KEY\) and fingerprint_key_file "
            r"\(FOOTHOLD_FINGERPRINT_KEY_FILE\) are both set",
        ),
    ],
)
def test_a_bad_fingerprint_key_file_is_refused_at_start_without_the_key(tmp_path, content, with_key, message):
    key_file = tmp_path / ("absent.key" if content is None else "fingerprint.key")
    if isinstance(content, bytes):
        key_file.write_bytes(content)
    elif content is not None:
        key_file.write_text(content)
    key = {"fingerprint_key": KEY} if with_key else {}
    with pytest.raises(ConfigError, match=message) as raised:
        load_settings(data_dir=tmp_path, fingerprint_key_file=str(key_file), **key)
    assert KEY not in str(raised.value) and KEY not in str(raised.value.__cause__)
