def main() -> None:  # placeholder until the CLI lands
    raise SystemExit("foothold CLI not built yet")
