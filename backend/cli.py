"""``deskbell-server``: the operator's command line (DESIGN.md, "Operator interface").

Exit status: 0 on success, 2 on bad usage (argparse prints usage and the error), 1 on
any other failure with one line on stderr: ``deskbell-server: error: <reason>``.
With ``--json`` the result is one JSON object on stdout and nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import json
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from backend import __version__, protocol
from backend.app import open_service, serve_forever
from backend.bus import open_bus
from backend.config import Config, load_config
from backend.errors import BadRequest, ConfigError, DeskbellError, NotFound
from backend.files import data_dir, make_private_dirs
from backend.logs import setup_logging
from backend.protocol import ErrorCode
from backend.redact import redact_url, scrub
from backend.store import open_store
from backend.store.base import SCHEMA_VERSION, Agent, ImportRow

PROG = "deskbell-server"
STDIN = "-"
"""A file or secret argument that means: read it from stdin."""
Result = dict[str, Any]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # exit 2 with usage, as argparse does
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _common() -> _Parser:
    common = _Parser(add_help=False)
    common.add_argument("--db", help="database: a file path, sqlite:///path or postgresql://…")
    common.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    common.add_argument("--config", help="TOML configuration file")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = _Parser(prog=PROG, description="Deskbell chat and notification service.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    serve = commands.add_parser("serve", parents=[common], help="run the server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--bus", help="local (default) or redis://host:port")
    serve.add_argument("--tls-cert", dest="tls_cert")
    serve.add_argument("--tls-key", dest="tls_key")
    serve.add_argument(
        "--trusted-proxy",
        dest="trusted_proxy",
        action="append",
        metavar="CIDR",
        help="a reverse proxy whose X-Forwarded-For (or Forwarded) is believed; repeatable",
    )
    serve.add_argument(
        "--proxy-header",
        dest="proxy_header",
        choices=["x-forwarded-for", "forwarded", "proxy-protocol"],
        help="what the trusted proxies send: an HTTP header (default x-forwarded-for) "
        "or the PROXY protocol",
    )

    inbox = commands.add_parser("inbox", help="manage inboxes").add_subparsers(
        dest="action", metavar="ACTION", parser_class=_Parser
    )
    inbox.required = True
    inbox_add = inbox.add_parser("add", parents=[common], help="create an inbox")
    inbox_add.add_argument("name")

    agent = commands.add_parser("agent", help="manage agents").add_subparsers(
        dest="action", metavar="ACTION", parser_class=_Parser
    )
    agent.required = True
    agent_add = agent.add_parser("add", parents=[common], help="create an agent")
    agent_add.add_argument("email")
    agent_add.add_argument("--name", required=True)
    agent_add.add_argument("--inbox", action="append", required=True, dest="inboxes")
    agent_add.add_argument(
        "--password-stdin", action="store_true", help="read the agent's password from stdin"
    )
    agent.add_parser("list", parents=[common], help="list agents")
    agent_import = agent.add_parser(
        "import", parents=[common], help="create or update agents from CSV or JSON Lines"
    )
    agent_import.add_argument("file", help="CSV (email,name,inboxes) or JSON Lines; - for stdin")
    agent_import.add_argument("--issue-tokens", action="store_true")

    token = commands.add_parser("token", help="agent tokens").add_subparsers(
        dest="action", metavar="ACTION", parser_class=_Parser
    )
    token.required = True
    token.add_parser("issue", parents=[common], help="issue an agent token").add_argument("email")
    token.add_parser("revoke", parents=[common], help="revoke a token").add_argument(
        "token", help="the token, or - to read it from stdin (keeps it out of `ps`)"
    )

    service = commands.add_parser("service-token", help="integration tokens").add_subparsers(
        dest="action", metavar="ACTION", parser_class=_Parser
    )
    service.required = True
    service_issue = service.add_parser("issue", parents=[common], help="issue a service token")
    service_issue.add_argument("name")
    service_issue.add_argument(
        "--replace",
        action="store_true",
        help="revoke the live token of this name (its connections close) and issue a new one",
    )

    commands.add_parser(
        "migrate", parents=[common], help="create or upgrade the database schema now"
    )
    check = commands.add_parser(
        "check", parents=[common], help="check the schema, database and bus; exit 1 if down"
    )
    check.add_argument("--bus", help="local (default) or redis://host:port")

    demo = commands.add_parser(
        "demo", parents=[common], help="seed a demo inbox, agents and tokens, then serve"
    )
    demo.add_argument("--port", type=int)
    demo.add_argument("--host")
    return parser


def _config(args: argparse.Namespace) -> Config:
    flags = {
        k: v
        for k, v in vars(args).items()
        if k in ("db", "host", "port", "bus", "tls_cert", "tls_key", "proxy_header")
    }
    if getattr(args, "trusted_proxy", None):
        flags["trusted_proxy"] = ",".join(args.trusted_proxy)
    return load_config(flags, args.config)


# -- commands ------------------------------------------------------------------------


def _agent_json(agent: Agent) -> Result:
    return {
        "id": agent.public_id,
        "email": agent.email,
        "name": agent.name,
        "inboxes": list(agent.inboxes),
    }


async def _inbox_add(args: argparse.Namespace, config: Config) -> Result:
    async with open_service(config) as service:
        inbox = await service.store.add_inbox(_nonempty(args.name, "inbox name"))
    return {"id": inbox.public_id, "name": inbox.name}


async def _agent_add(args: argparse.Namespace, config: Config) -> Result:
    password = None
    if args.password_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        if not password:
            raise BadRequest("no password on stdin")
    email = _email(args.email)
    async with open_service(config) as service:
        agent = await service.add_agent(email, _nonempty(args.name, "name"), args.inboxes, password)
    return _agent_json(agent)


async def _agent_list(args: argparse.Namespace, config: Config) -> Result:
    async with open_service(config) as service:
        agents = await service.store.list_agents()
    return {"agents": [_agent_json(a) for a in agents]}


async def _agent_import(args: argparse.Namespace, config: Config) -> Result:
    rows = read_import_file(args.file)
    async with open_service(config) as service:
        result, tokens = await service.import_agents(rows, args.issue_tokens)
    return {"created": result.created, "updated": result.updated, "tokens": tokens}


async def _token_issue(args: argparse.Namespace, config: Config) -> Result:
    async with open_service(config) as service:
        token, agent = await service.issue_agent_token(args.email, device="cli")
    return {"token": token, "agent_id": agent.public_id}


async def _token_revoke(args: argparse.Namespace, config: Config) -> Result:
    token: str = args.token
    if token == STDIN:
        token = sys.stdin.readline().strip()
        if not token:
            raise BadRequest("no token on stdin")
    async with open_service(config) as service:
        revoked = await service.revoke_token(token)
    if not revoked:
        raise NotFound("no such token, or it was already revoked")
    return {"revoked": True}


async def _service_token_issue(args: argparse.Namespace, config: Config) -> Result:
    async with open_service(config) as service:
        token = await service.issue_service_token(
            _nonempty(args.name, "name"), replace=args.replace
        )
    return {"token": token, "name": args.name}


async def _serve(args: argparse.Namespace, config: Config) -> Result:
    await serve_forever(config)
    return {}


async def _migrate(args: argparse.Namespace, config: Config) -> Result:
    store = open_store(config.db)
    await store.open()  # creates the schema, or upgrades it to this release's version
    try:
        version = await store.schema_version()
    finally:
        await store.close()
    return {"db": redact_url(config.db), "schema_version": version}


class _CheckFailed(DeskbellError):
    """``check`` found something down; ``result`` is still printed."""

    code: ErrorCode = "unavailable"

    def __init__(self, message: str, result: Result):
        super().__init__(message)
        self.result = result


async def _check(args: argparse.Namespace, config: Config) -> Result:
    """Open the store (as every command does) and ping it; ask Redis for a PONG."""
    database: Result = {
        "url": redact_url(config.db),
        "status": "ok",
        "schema_version": None,
        "expected_schema_version": SCHEMA_VERSION,
    }
    bus: Result = {"url": redact_url(config.bus), "status": "ok"}
    problems = []
    try:
        store = open_store(config.db)
        await store.open()
        try:
            await store.ping()
            database["schema_version"] = await store.schema_version()
        finally:
            await store.close()
    except DeskbellError as exc:
        database.update(status="unavailable", reason=exc.message)
        problems.append(exc.message)
    try:
        opened = open_bus(config.bus)
        probe = getattr(opened, "probe", None)  # only a networked bus can be down
        if probe is not None:
            await probe()
    except DeskbellError as exc:
        bus.update(status="unavailable", reason=exc.message)
        problems.append(exc.message)
    result = {"ok": not problems, "database": database, "bus": bus}
    if problems:
        raise _CheckFailed("; ".join(problems), result)
    return result


DEMO_INBOX = "Support"
DEMO_PASSWORD = "demo"  # noqa: S105 - the demo's published sign-in, not a secret
DEMO_AGENTS = (
    ("alex@demo.deskbell.dev", "Alex Morgan"),
    ("sam@demo.deskbell.dev", "Sam Rivera"),
)


async def _demo(args: argparse.Namespace, config: Config) -> Result:
    """Seed (idempotently), print how to sign in, and serve."""
    folder = data_dir()
    async with open_service(config) as service:
        store = service.store
        with contextlib.suppress(DeskbellError):  # seeded by an earlier run
            await store.add_inbox(DEMO_INBOX)
        for email, name in DEMO_AGENTS:
            if await store.agent_by_email(email) is None:
                await service.add_agent(email, name, [DEMO_INBOX], DEMO_PASSWORD)
        token, agent = await service.issue_agent_token(DEMO_AGENTS[0][0], device="demo")
        service_token = await service.issue_service_token("demo", replace=True)
    token_file = folder / "demo-agent.token"
    service_file = folder / "demo-service.token"
    await asyncio.to_thread(_write_secret, token_file, token)
    await asyncio.to_thread(_write_secret, service_file, service_token)
    # The demo's visitor simulator opens conversations from this machine every few
    # seconds; the public-website limits would stop it.
    config.visitor_starts_per_address = max(config.visitor_starts_per_address, 100_000)
    config.visitor_messages_per_minute = max(config.visitor_messages_per_minute, 1000)
    host = config.host

    def announce(backend: Any) -> None:
        base = f"{host}:{backend.server.port}"
        lines = [
            "Deskbell demo is running. Ctrl+C stops it.",
            f"  Chat as a visitor:  http://{base}/widget/?inbox={DEMO_INBOX}",
            f"  Tray app:           deskbell --server ws://{base} --token-file {token_file}",
            f"  Or sign in as       {DEMO_AGENTS[0][0]} / password {DEMO_PASSWORD}",
            f"  Integration token:  {service_file}",
        ]
        if args.json:
            print(
                json.dumps(
                    {
                        "url": f"ws://{base}",
                        "widget": f"http://{base}/widget/?inbox={DEMO_INBOX}",
                        "agent": agent.public_id,
                        "email": DEMO_AGENTS[0][0],
                        "password": DEMO_PASSWORD,
                        "token_file": str(token_file),
                        "service_token_file": str(service_file),
                    }
                ),
                flush=True,
            )
        else:
            print("\n".join(lines), flush=True)

    await serve_forever(config, announce)
    return {}


def _write_secret(path: Path, secret: str) -> None:
    """Write a token readable by this user only."""
    make_private_dirs(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")


COMMANDS: dict[
    tuple[str, str | None], Callable[[argparse.Namespace, Config], Coroutine[Any, Any, Result]]
] = {
    ("serve", None): _serve,
    ("inbox", "add"): _inbox_add,
    ("agent", "add"): _agent_add,
    ("agent", "list"): _agent_list,
    ("agent", "import"): _agent_import,
    ("token", "issue"): _token_issue,
    ("token", "revoke"): _token_revoke,
    ("service-token", "issue"): _service_token_issue,
    ("demo", None): _demo,
    ("migrate", None): _migrate,
    ("check", None): _check,
}


# -- input helpers -------------------------------------------------------------------


def _nonempty(value: str, what: str) -> str:
    value = value.strip()
    if not value:
        raise BadRequest(f"the {what} must not be empty")
    return value


def _email(value: str) -> str:
    value = value.strip()
    local, at, domain = value.rpartition("@")
    if not at or not local or "." not in domain or " " in value:
        raise BadRequest(f"{value!r} is not an email address")
    return value


def read_import_file(path: str) -> list[ImportRow]:
    """Parse a CSV (header ``email,name,inboxes``, inboxes separated by ``;``) or JSON
    Lines file (``{"email", "name", "inboxes": [...]}`` per line).

    Raises:
        BadRequest: naming the line and what is wrong with it; nothing is imported.
    """
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise BadRequest(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise BadRequest(f"{path} is not UTF-8 text") from None
    stripped = text.lstrip()
    rows: list[ImportRow] = []
    seen: set[str] = set()

    def add(line: int, email: Any, name: Any, inboxes: Any) -> None:
        if not isinstance(email, str) or not isinstance(name, str) or not name.strip():
            raise BadRequest(f"{path}, line {line}: needs an email and a name")
        if not isinstance(inboxes, list) or not all(
            isinstance(i, str) and i.strip() for i in inboxes
        ):
            raise BadRequest(f"{path}, line {line}: inboxes must be a list of names")
        try:
            email = _email(email)
        except BadRequest as exc:
            raise BadRequest(f"{path}, line {line}: {exc.message}") from None
        if email.lower() in seen:
            raise BadRequest(f"{path}, line {line}: {email} appears twice")
        seen.add(email.lower())
        rows.append(ImportRow(email, name.strip(), tuple(i.strip() for i in inboxes)))

    if stripped.startswith("{"):
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BadRequest(f"{path}, line {number}: not valid JSON ({exc.msg})") from None
            if not isinstance(item, dict):
                raise BadRequest(f"{path}, line {number}: expected a JSON object")
            add(number, item.get("email"), item.get("name"), item.get("inboxes", []))
    else:
        reader = csv.DictReader(io.StringIO(text))
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        if header[:3] != ["email", "name", "inboxes"]:
            raise BadRequest(f"{path}: the first line must be the header email,name,inboxes")
        reader.fieldnames = header
        for row in reader:
            inboxes = [i.strip() for i in (row.get("inboxes") or "").split(";") if i.strip()]
            add(reader.line_num, row.get("email"), row.get("name") or "", inboxes)
    return rows


# -- entry point -----------------------------------------------------------------------


def _print_result(command: tuple[str, str | None], result: Result, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
        return
    if command == ("agent", "list"):
        for agent in result["agents"]:
            print(
                f"{agent['email']}\t{agent['name']}\t{', '.join(agent['inboxes'])}\t{agent['id']}"
            )
        return
    if command == ("check", None):
        for part in ("database", "bus"):
            state = result[part]
            details = state.get("reason") or (
                f"schema version {state['schema_version']}" if part == "database" else ""
            )
            print(f"{part}: {state['status']} ({state['url']}{'; ' if details else ''}{details})")
        return
    if command == ("agent", "import"):
        print(f"created {result['created']}, updated {result['updated']}")
        for email, token in result["tokens"].items():
            print(f"{email}\t{token}")
        return
    if "token" in result and len(result) <= 2:
        print(result["token"])
        return
    for key, value in result.items():
        print(f"{key}: {', '.join(value) if isinstance(value, list) else value}")


def _urls(args: argparse.Namespace) -> list[str]:
    """Every URL the command was given, from any source, whose secrets must not show."""
    urls = [getattr(args, "db", None), getattr(args, "bus", None)]
    urls += [os.environ.get("DESKBELL_DB"), os.environ.get("DESKBELL_BUS")]
    return [url for url in urls if url]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = (args.command, getattr(args, "action", None))
    handler = COMMANDS[command]
    try:
        config = _config(args)
        setup_logging(config.log_level, quiet=command[0] not in ("serve", "demo"))
        result = asyncio.run(handler(args, config))
    except DeskbellError as exc:
        if isinstance(exc, _CheckFailed):
            _print_result(command, exc.result, args.json)
        print(f"{PROG}: error: {scrub(exc.message, _urls(args))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except Exception as exc:  # a bug: one line for the person, the traceback in the log
        logging.getLogger("deskbell").debug("unexpected failure", exc_info=True)
        reason = scrub(str(exc), _urls(args))
        print(
            f"{PROG}: error: unexpected failure ({type(exc).__name__}: {reason}); "
            "run with DESKBELL_LOG_LEVEL=DEBUG for details",
            file=sys.stderr,
        )
        if os.environ.get("DESKBELL_LOG_LEVEL", "").upper() == "DEBUG":
            raise
        return 1
    if result or args.json:
        _print_result(command, result, args.json)
    return 0


__all__ = ["ConfigError", "main", "protocol", "read_import_file"]
