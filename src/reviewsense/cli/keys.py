"""`reviewsense keys create|revoke|list`: manage the service's API keys."""

from __future__ import annotations

import argparse
import sys

HELP = "create, revoke or list API keys of the review service"

MIN_PREFIX = 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from reviewsense.cli._common import settings_default
    from reviewsense.service.db import ROLES

    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    default_db = settings_default("db_url")
    db_help = f"database URL (default: REVIEWSENSE_DB_URL, else {default_db})"
    p = sub.add_parser("create", help="create a key and print it (once; only its hash is kept)")
    p.add_argument(
        "--role",
        required=True,
        choices=ROLES,
        help="what the key may do (no default): ingest sends reviews; read sees titles, flags "
        "and the dashboard; support also resolves flags and sees users (docs/SERVICE.md)",
    )
    p.add_argument("--db", metavar="URL", help=db_help)
    p = sub.add_parser("revoke", help="revoke a key by its id (or a unique prefix of it)")
    p.add_argument("key", metavar="KEY_ID_OR_PREFIX", help="key id, unique prefix or full key")
    p.add_argument("--db", metavar="URL", help=db_help)
    p = sub.add_parser("list", help="list key ids, roles and whether they are revoked")
    p.add_argument("--db", metavar="URL", help=db_help)


def run(args: argparse.Namespace) -> int:
    from reviewsense.cli._common import migrated_engine
    from reviewsense.service import crud
    from reviewsense.service.db import SQLITE_WRITE, make_sessionmaker
    from reviewsense.settings import ServiceSettings

    # The environment is validated as for serve: a bad REVIEWSENSE_* is a one-line error.
    settings = ServiceSettings.from_flags({"db_url": args.db}, {"db_url": "--db"})
    engine = migrated_engine(settings.db_url)
    try:
        sm = make_sessionmaker(engine)
        with sm() as session:
            session.connection(execution_options={SQLITE_WRITE: True})
            if args.action == "create":
                key_id, key = crud.create_api_key(session, role=args.role)
                session.commit()
                sys.stderr.write(
                    f"created {args.role} key {key_id}; it is shown only now, store it safely:\n"
                )
                sys.stdout.write(key + "\n")
                return 0
            if args.action == "list":
                for k in crud.list_api_keys(session):
                    state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
                    sys.stdout.write(
                        f"{k.key_id}\t{k.role}\t{k.created_at:%Y-%m-%d %H:%M}\t{state}\n"
                    )
                return 0
            return _revoke(session, args.key)
    finally:
        engine.dispose()


def _revoke(session, ident: str) -> int:
    from reviewsense.errors import ConfigError
    from reviewsense.service import crud
    from reviewsense.service.security import parse_key_id

    if parse_key_id(ident) is None and len(ident.strip()) < MIN_PREFIX:
        raise ConfigError(f"KEY_ID_OR_PREFIX: give at least {MIN_PREFIX} characters of the key id")
    matches = crud.find_api_keys(session, key_id_or_prefix=ident)
    if not matches:
        raise ConfigError(f"KEY_ID_OR_PREFIX: no key id starts with {ident.strip()!r}")
    if len(matches) > 1:
        ids = ", ".join(k.key_id for k in matches)
        raise ConfigError(f"KEY_ID_OR_PREFIX: {ident.strip()!r} matches several keys ({ids})")
    key = matches[0]
    if crud.revoke_api_key(session, key=key):
        session.commit()
        sys.stdout.write(f"revoked {key.role} key {key.key_id}\n")
    else:
        sys.stdout.write(f"{key.role} key {key.key_id} was already revoked\n")
    return 0
