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
import getpass
import io
import json
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from backend import __version__, protocol, waiting
from backend.app import open_service, open_store_of, serve_forever, store_for
from backend.bus import open_bus
from backend.config import Config, config_keys, load_config
from backend.errors import BadRequest, ConfigError, DeskbellError, NotFound
from backend.files import data_dir, make_private_dirs
from backend.logs import setup_logging
from backend.protocol import ErrorCode
from backend.redact import redact_url, scrub
from backend.store.base import SCHEMA_VERSION, Agent, ImportRow, InboxSummary

PROG = "deskbell-server"
STDIN = "-"
"""A file or secret argument that means: read it from stdin."""
Result = dict[str, Any]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # exit 2 with usage, as argparse does
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _port(text: str) -> int:
    """An argparse type: a TCP port number (bad usage, exit 2, otherwise)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0 to 65535)")
    return port


SERVE_FLAGS: dict[str, dict[str, Any]] = {
    "host": {"metavar": "ADDRESS", "help": "where to listen (default 127.0.0.1; 0.0.0.0: all)"},
    "port": {"type": _port, "metavar": "PORT", "help": "default 8765; 0 picks a free one"},
    "bus": {"metavar": "URL", "help": "local (default) or redis://host:port/N"},
    "tls_cert": {"metavar": "FILE", "help": "certificate chain (PEM): serve wss:// directly"},
    "tls_key": {"metavar": "FILE", "help": "the certificate's private key (PEM)"},
    "log_level": {
        "type": str.upper,
        "choices": ("DEBUG", "INFO", "WARNING", "ERROR"),
        "help": "default INFO",
    },
    "node": {"metavar": "NAME", "help": "name in logs and in welcome (default: host name)"},
    "visitor_origins": {
        "metavar": "URLS",
        "help": "web sites allowed to embed the chat widget, comma-separated; * for any",
    },
    "max_message_bytes": {
        "type": int,
        "metavar": "BYTES",
        "help": "largest frame a client may send (default 65536)",
    },
    "ping_interval": {
        "type": float,
        "metavar": "SECONDS",
        "help": "between WebSocket pings (default 20)",
    },
    "visitor_messages_per_minute": {
        "type": int,
        "metavar": "N",
        "help": "messages one visitor may send a minute (default 20)",
    },
    "visitor_starts_per_address": {
        "type": int,
        "metavar": "N",
        "help": "conversations one address may start in 10 minutes (default 10)",
    },
    "login_attempts_per_email": {
        "type": int,
        "metavar": "N",
        "help": "sign-in attempts for one email in 10 minutes (default 10)",
    },
    "login_attempts_per_address": {
        "type": int,
        "metavar": "N",
        "help": "sign-in attempts from one address in 10 minutes (default 50)",
    },
    "token_checks_per_minute": {
        "type": int,
        "metavar": "N",
        "help": "visitor attach and logout requests one address may make a minute (default 60)",
    },
    "trusted_proxy": {
        "action": "append",
        "metavar": "CIDR",
        "help": "a reverse proxy whose X-Forwarded-For (or Forwarded) is believed; repeatable",
    },
    "proxy_header": {
        "choices": ("x-forwarded-for", "forwarded", "proxy-protocol"),
        "help": "what the trusted proxies send: an HTTP header (default x-forwarded-for) "
        "or the PROXY protocol",
    },
    "anonymous_idle_timeout": {
        "type": float,
        "metavar": "SECONDS",
        "help": "an unauthenticated connection's idle limit (default 60)",
    },
    "anonymous_connections_per_address": {
        "type": int,
        "metavar": "N",
        "help": "unauthenticated connections one address may hold (default 100)",
    },
    "anonymous_connections": {
        "type": int,
        "metavar": "N",
        "help": "unauthenticated connections this node holds at most (default 0: half "
        "its file limit)",
    },
    "compression": {"choices": ("off", "deflate"), "help": "permessage-deflate (default off)"},
    "password_sign_in": {
        "choices": ("true", "false"),
        "help": "false: agents sign in only through single sign-on (default true)",
    },
    "sso_issuer": {"metavar": "URL", "help": "the OpenID provider's issuer: turns on SSO"},
    "sso_client_id": {"metavar": "ID", "help": "the tray app's client id at the provider"},
    "sso_label": {"metavar": "NAME", "help": 'the button says "Sign in with NAME"'},
    "sso_scopes": {"metavar": "SCOPES", "help": "comma-separated (default openid,email,profile)"},
    "sso_email_claim": {"metavar": "CLAIM", "help": "the claim with the email (default email)"},
    "sso_create_agents": {
        "choices": ("true", "false"),
        "help": "true: a valid sign-in of an unknown email creates the agent (default false)",
    },
    "sso_groups_claim": {
        "metavar": "CLAIM",
        "help": "a claim of group names: a created agent joins the inboxes so named",
    },
    "send_buffer_limit": {
        "type": int,
        "metavar": "BYTES",
        "help": "unsent bytes before a slow client is dropped (default 4 MiB)",
    },
    "stream_sweep_seconds": {
        "type": float,
        "metavar": "SECONDS",
        "help": "how often a node checks its sessions' streams with the store (default 5, 0: off)",
    },
    "drain_seconds": {
        "type": float,
        "metavar": "SECONDS",
        "help": "the most a stop on SIGTERM takes before the node exits (default 10)",
    },
}
"""Every configuration key but db (a common option) is a flag of serve (operations.md)."""


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
    for key, options in SERVE_FLAGS.items():
        serve.add_argument(f"--{key.replace('_', '-')}", dest=key, **options)

    inbox = commands.add_parser("inbox", help="manage inboxes").add_subparsers(
        dest="action", metavar="ACTION", parser_class=_Parser
    )
    inbox.required = True
    inbox_add = inbox.add_parser("add", parents=[common], help="create an inbox")
    inbox_add.add_argument("name")
    inbox.add_parser("list", parents=[common], help="list inboxes with their agent counts")
    inbox_remove = inbox.add_parser(
        "remove", parents=[common], help="delete an inbox (refused while it has conversations)"
    )
    inbox_remove.add_argument("name")
    inbox_remove.add_argument(
        "--force",
        action="store_true",
        help="also delete its conversations and their messages, for good",
    )

    inbox_policy = inbox.add_parser(
        "policy",
        parents=[common],
        help="show or set an inbox's escalation policy (no flags: show it)",
    )
    inbox_policy.add_argument("name")
    inbox_policy.add_argument(
        "--escalate",
        action="append",
        metavar="SECONDS[:TARGET]",
        help="a step: after SECONDS of waiting, notify TARGET (inbox, the default; "
        "inbox:<name>; or an agent's email). Repeat for several; replaces the steps",
    )
    inbox_policy.add_argument(
        "--unseen-after",
        type=int,
        metavar="SECONDS",
        dest="unseen_after",
        help="bring the next step forward when nobody saw a chat notification this long",
    )
    inbox_policy.add_argument(
        "--clear", action="store_true", help="remove every step; unseen-after back to 30"
    )
    inbox_policy.set_defaults(usage_parser=inbox_policy)

    agent = commands.add_parser("agent", help="manage agents").add_subparsers(
        dest="action", metavar="ACTION", parser_class=_Parser
    )
    agent.required = True
    agent_add = agent.add_parser("add", parents=[common], help="create an agent")
    agent_add.add_argument("email")
    agent_add.add_argument("--name", required=True)
    agent_add.add_argument(
        "--inbox", action="append", required=True, dest="inboxes", help="repeat for several"
    )
    agent_add.add_argument(
        "--password-stdin", action="store_true", help="read the agent's password from stdin"
    )
    agent.add_parser("list", parents=[common], help="list agents")
    agent_update = agent.add_parser(
        "update", parents=[common], help="rename an agent or replace its inboxes"
    )
    agent_update.add_argument("email")
    agent_update.set_defaults(usage_parser=agent_update)
    agent_update.add_argument("--name")
    agent_update.add_argument(
        "--inbox",
        action="append",
        dest="inboxes",
        help="the agent's inboxes from now on (repeat for several; replaces the old set)",
    )
    password = agent.add_parser(
        "set-password",
        parents=[common],
        help="set an agent's password; ends the sessions signed in with the old one",
    )
    password.add_argument("email")
    password.add_argument(
        "--password-stdin",
        action="store_true",
        help="read one line from stdin (the default when stdin is not a terminal)",
    )
    agent.add_parser(
        "disable",
        parents=[common],
        help="close an agent's sessions and refuse its sign-in; keeps its history",
    ).add_argument("email")
    enable = agent.add_parser("enable", parents=[common], help="let a disabled agent sign in again")
    enable.add_argument("email")
    agent.add_parser(
        "remove",
        parents=[common],
        help="delete an agent (its messages stay, under its name)",
    ).add_argument("email")
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
    demo.add_argument("--port", type=_port)
    demo.add_argument("--host")
    return parser


def _config(args: argparse.Namespace) -> Config:
    keys = config_keys()
    flags = {k: v for k, v in vars(args).items() if k in keys}
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
        "disabled": agent.disabled,
    }


def _inbox_json(summary: InboxSummary) -> Result:
    return {
        "id": summary.inbox.public_id,
        "name": summary.inbox.name,
        "agents": summary.agents,
        "conversations": summary.conversations,
    }


def _inbox_names(values: list[str]) -> list[str]:
    """The ``--inbox`` values, stripped; an empty one is refused."""
    return [_nonempty(value, "inbox name") for value in values]


@contextlib.contextmanager
def _one_inbox_per_flag(names: list[str]) -> Iterator[None]:
    """An unknown inbox whose name looks like a list ("Support;Billing") was meant as
    several: say to repeat --inbox rather than to create an inbox of that name."""
    try:
        yield
    except NotFound as exc:
        for name in names:
            if (";" in name or "," in name) and f"no inbox named {name}" in exc.message:
                parts = [p.strip() for p in name.replace(";", ",").split(",") if p.strip()]
                repeated = " ".join(f"--inbox {p}" for p in parts)
                raise BadRequest(
                    f"there is no inbox named {name!r}; for several inboxes, repeat "
                    f"--inbox: {repeated}"
                ) from None
        raise


def _read_password(from_stdin: bool) -> str:
    """The new password: asked twice without echo on a terminal, else one stdin line."""
    if not from_stdin and sys.stdin.isatty():
        first = getpass.getpass("New password: ")
        if getpass.getpass("Repeat it: ") != first:
            raise BadRequest("the two passwords differ; nothing was changed")
        password = first
    else:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
    if not password:
        raise BadRequest("no password given; nothing was changed")
    return password


async def _inbox_add(args: argparse.Namespace, config: Config) -> Result:
    async with open_service(config) as service:
        inbox = await service.store.add_inbox(_nonempty(args.name, "inbox name"))
    return {"id": inbox.public_id, "name": inbox.name}


async def _inbox_list(args: argparse.Namespace, config: Config) -> Result:
    async with open_service(config) as service:
        inboxes = await service.store.list_inboxes()
    return {"inboxes": [_inbox_json(i) for i in inboxes]}


async def _inbox_remove(args: argparse.Namespace, config: Config) -> Result:
    async with open_service(config) as service:
        removed = await service.store.remove_inbox(args.name, force=args.force)
    return {
        "removed": args.name,
        "conversations": removed.conversations,
        "messages": removed.messages,
        "memberships": removed.memberships,
        "notifications_unlinked": removed.notifications,
    }


async def _inbox_policy(args: argparse.Namespace, config: Config) -> Result:
    if args.clear and (args.escalate is not None or args.unseen_after is not None):
        raise _UsageError(
            "--clear removes every step and sets --unseen-after back to 30; give it alone"
        )
    try:
        for text in args.escalate or []:
            waiting.parse_step(text)
    except waiting.PolicyError as exc:
        raise _UsageError(str(exc)) from None
    if args.unseen_after is not None and not 1 <= args.unseen_after <= protocol.MAX_STEP_SECONDS:
        raise _UsageError(
            f"--unseen-after takes whole seconds from 1 to {protocol.MAX_STEP_SECONDS}"
        )
    async with open_service(config) as service:
        if args.escalate is None and args.unseen_after is None and not args.clear:
            policy = await service.waiting.policy(args.name)
        else:
            policy = await service.waiting.set_policy(
                args.name,
                escalate=args.escalate,
                unseen_after_s=args.unseen_after,
                clear=args.clear,
            )
    result: Result = msgspec.to_builtins(policy)
    return result


def _policy_text(r: Result) -> str:
    steps = ", ".join(f"after {s['after_s']} s to {s['to']}" for s in r["escalate"])
    return (
        f"inbox {r['inbox']}: "
        + (f"escalate {steps}" if steps else "no escalation steps")
        + f"; a chat notification nobody saw for {r['unseen_after_s']} s brings the next "
        "step forward"
    )


async def _agent_update(args: argparse.Namespace, config: Config) -> Result:
    if args.name is None and args.inboxes is None:
        raise _UsageError("say what to change: --name NAME and/or --inbox NAME (repeated)")
    name = None if args.name is None else _nonempty(args.name, "name")
    inboxes = None if args.inboxes is None else _inbox_names(args.inboxes)
    with _one_inbox_per_flag(inboxes or []):
        async with open_service(config) as service:
            agent = await service.update_agent(args.email, name=name, inboxes=inboxes)
    return _agent_json(agent)


async def _agent_set_password(args: argparse.Namespace, config: Config) -> Result:
    password = _read_password(args.password_stdin)
    async with open_service(config) as service:
        agent, revoked = await service.set_password(args.email, password)
    return {"email": agent.email, "tokens_revoked": revoked}


async def _agent_disable(args: argparse.Namespace, config: Config) -> Result:
    async with open_service(config) as service:
        agent, revoked = await service.set_agent_disabled(args.email, True)
    return {"email": agent.email, "disabled": True, "tokens_revoked": revoked}


async def _agent_enable(args: argparse.Namespace, config: Config) -> Result:
    async with open_service(config) as service:
        agent, _ = await service.set_agent_disabled(args.email, False)
    return {"email": agent.email, "disabled": False}


async def _agent_remove(args: argparse.Namespace, config: Config) -> Result:
    async with open_service(config) as service:
        agent, removed = await service.remove_agent(args.email)
    return {
        "removed": agent.email,
        "tokens_revoked": len(removed.revoked),
        "notifications_deleted": removed.notifications,
        "memberships_deleted": removed.memberships,
        "conversations_unassigned": removed.unassigned,
        "messages_kept": removed.messages_kept,
    }


async def _agent_add(args: argparse.Namespace, config: Config) -> Result:
    password = None
    if args.password_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        if not password:
            raise BadRequest("no password on stdin")
    email = _email(args.email)
    inboxes = _inbox_names(args.inboxes)
    with _one_inbox_per_flag(inboxes):
        async with open_service(config) as service:
            agent = await service.add_agent(email, _nonempty(args.name, "name"), inboxes, password)
    return _agent_json(agent)


APP_VERSIONS_WINDOW = timedelta(days=1)
"""`agent list` shows the app versions each agent connected with within this window."""


async def _agent_list(args: argparse.Namespace, config: Config) -> Result:
    since = (datetime.now(UTC) - APP_VERSIONS_WINDOW).isoformat(timespec="milliseconds")
    async with open_service(config) as service:
        agents = await service.store.list_agents()
        versions = await service.client_versions(since.replace("+00:00", "Z"))
    return {
        "agents": [
            {
                **_agent_json(a),
                "app_versions": [
                    {"version": v.version, "os": v.os, "last_seen": v.seen_at}
                    for v in versions.get(a.id, [])
                ],
            }
            for a in agents
        ]
    }


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
    store = await open_store_of(config)  # creates the schema, or upgrades it
    try:
        version = await store.schema_version()
    finally:
        await store.close()
    return {"db": redact_url(config.db), "schema_version": version}


class _UsageError(Exception):
    """Bad usage found after parsing: usage text and the error, exit 2."""


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
        store = store_for(config)
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
    ("inbox", "list"): _inbox_list,
    ("inbox", "remove"): _inbox_remove,
    ("inbox", "policy"): _inbox_policy,
    ("agent", "add"): _agent_add,
    ("agent", "list"): _agent_list,
    ("agent", "update"): _agent_update,
    ("agent", "set-password"): _agent_set_password,
    ("agent", "disable"): _agent_disable,
    ("agent", "enable"): _agent_enable,
    ("agent", "remove"): _agent_remove,
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
            state = "\tdisabled" if agent["disabled"] else ""
            apps = ", ".join(f"{v['version']} ({v['os']})" for v in agent["app_versions"])
            print(
                f"{agent['email']}\t{agent['name']}\t{', '.join(agent['inboxes'])}\t{agent['id']}"
                f"{state}" + (f"\t{apps}" if apps else "")
            )
        return
    if command in _SENTENCES:
        print(_SENTENCES[command](result))
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


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _removed_agent(r: Result) -> str:
    return "\n".join(
        [
            f"removed agent {r['removed']}.",
            f"  deleted: {_plural(r['notifications_deleted'], 'notification')}, "
            f"{_plural(r['memberships_deleted'], 'inbox membership')}; "
            f"{_plural(r['tokens_revoked'], 'token')} revoked, so its open sessions "
            "close within seconds",
            f"  kept: {_plural(r['messages_kept'], 'message')} it wrote, in their "
            "conversations under its name; "
            f"{_plural(r['conversations_unassigned'], 'conversation')} assigned to it are "
            "now unassigned",
        ]
    )


_SENTENCES: dict[tuple[str, str | None], Callable[[Result], str]] = {
    ("inbox", "list"): lambda r: "\n".join(
        f"{i['name']}\t{_plural(i['agents'], 'agent')}\t"
        f"{_plural(i['conversations'], 'conversation')}\t{i['id']}"
        for i in r["inboxes"]
    ),
    ("inbox", "remove"): lambda r: (
        f"removed inbox {r['removed']}: deleted {_plural(r['conversations'], 'conversation')}, "
        f"{_plural(r['messages'], 'message')} and {_plural(r['memberships'], 'membership')} "
        f"(the agents stay); {_plural(r['notifications_unlinked'], 'notification')} about "
        "them stay in the agents' history, marked read"
    ),
    ("agent", "disable"): lambda r: (
        f"{r['email']} is disabled: {_plural(r['tokens_revoked'], 'token')} revoked, so its "
        "sessions close within seconds; it cannot sign in or get tokens, and its history "
        f"stays. Undo with: deskbell-server agent enable {r['email']}"
    ),
    ("agent", "enable"): lambda r: f"{r['email']} is enabled: it can sign in again",
    ("agent", "set-password"): lambda r: (
        f"password of {r['email']} changed; {_plural(r['tokens_revoked'], 'token')} revoked, "
        "so sessions signed in before must sign in again"
    ),
    ("agent", "remove"): _removed_agent,
    ("inbox", "policy"): _policy_text,
}


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
    except _UsageError as exc:
        args.usage_parser.error(str(exc))  # exits 2
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
