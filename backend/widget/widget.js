/* Deskbell visitor widget: a chat page served at /widget/?inbox=NAME.
 *
 * It talks to the backend over WebSocket /visitor (subprotocol deskbell.v1; frames in
 * docs/protocol.md): `start` opens a conversation and returns a visitor token, `attach`
 * resumes one with that token, `send` adds a message; the server pushes `message`,
 * `status` and `team_status` frames for the conversation (`team_status` with `busy`
 * true: the wait escalated past its last step or nobody of the inbox is online, and the
 * visitor is told so honestly, until an agent answers or `busy` turns false).
 *
 * Rules this file keeps:
 * - Visitor and agent text is untrusted. It only ever reaches the page through
 *   textContent; nothing here assigns innerHTML, so markup in a message stays text.
 * - No inline script or style (the server's CSP forbids both).
 * - The token lives in localStorage, per inbox, so a reload re-attaches.
 * - A lost connection is retried by itself, with capped exponential backoff and
 *   jitter; messages typed meanwhile are queued and sent (once: the server dedupes by
 *   client_msg_id) after the re-attach.
 * - A socket the server closed for idling before any chat (close code 4008) is not a
 *   lost connection: the widget stays quiet and connects again when the visitor starts
 *   to type or presses Start chat.
 */
(() => {
  "use strict";

  const SUBPROTOCOL = "deskbell.v1";
  const CLOSE_IDLE = 4008; // server.CLOSE_IDLE: no chat started in time
  const MAX_BODY_CHARS = 8000; // protocol.MAX_BODY_CHARS
  const MAX_NAME_CHARS = 120; // protocol.MAX_NAME_CHARS
  const STORAGE_PREFIX = "deskbell.visitor.";
  const NEAR_BOTTOM_PX = 80;
  const AUTHOR_KINDS = ["visitor", "agent", "system"];

  // ------------------------------------------------------------------ pure helpers

  /** Reconnect delays in ms: doubling from `first` up to `cap`, each with jitter so
   * that many widgets do not all come back at the same instant after a restart. */
  function* reconnectDelays(first = 500, cap = 10000) {
    let delay = first;
    for (;;) {
      yield Math.round(delay * (0.5 + Math.random() * 0.5));
      delay = Math.min(cap, delay * 2);
    }
  }

  function randomId() {
    // crypto.randomUUID needs a secure context; getRandomValues does not.
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return "v" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function sentence(text) {
    const trimmed = String(text || "").trim();
    if (!trimmed) return "";
    const first = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
    return /[.!?]$/.test(first) ? first : first + ".";
  }

  class OfflineError extends Error {
    constructor() {
      super("not connected");
      this.code = "offline";
    }
  }

  class RequestError extends Error {
    constructor(code, message) {
      super(message);
      this.code = code;
    }
  }

  /** What went wrong, in words for the person in front of the page. `action` is what
   * they were doing: "start", "send" or "attach". */
  function describeError(error, action) {
    const code = error && error.code;
    const server = sentence(error && error.message);
    switch (code) {
      case "offline":
        return action === "start"
          ? "The connection dropped before your chat started. Press Start chat to try again."
          : "You are offline. Your message will be sent when the connection is back.";
      case "rate_limited":
        // The server says how long to wait, and says it for people.
        return server || "You are sending messages too fast. Wait a moment and try again.";
      case "not_found":
        return action === "start"
          ? server || "This help desk does not exist. Please tell the website's owner."
          : "This conversation is no longer available.";
      case "too_large":
      case "bad_request":
        return action === "start"
          ? "We could not start the chat with what was entered. Check your name and message and try again."
          : `This message could not be sent. Messages can be at most ${MAX_BODY_CHARS.toLocaleString()} characters.`;
      case "forbidden":
      case "unauthorized":
        return "This chat is not allowed here. Please tell the website's owner.";
      case "unavailable":
      case "internal":
      default:
        return "Something went wrong on our side. Please try again in a moment.";
    }
  }

  // ------------------------------------------------------------------ storage

  /** The visitor's token and name, kept per inbox. Storage can be blocked (a
   * third-party iframe, private mode); then the chat lasts as long as the page. */
  const memoryStore = new Map();
  const savedSession = {
    load(inbox) {
      try {
        const raw = window.localStorage.getItem(STORAGE_PREFIX + inbox);
        const value = raw ? JSON.parse(raw) : {};
        return value && typeof value === "object" ? value : {};
      } catch (_) {
        return memoryStore.get(inbox) || {};
      }
    },
    save(inbox, value) {
      memoryStore.set(inbox, value);
      try {
        window.localStorage.setItem(STORAGE_PREFIX + inbox, JSON.stringify(value));
      } catch (_) {
        /* blocked storage: the memory copy is all we have */
      }
    },
  };

  // ------------------------------------------------------------------ connection

  /** One WebSocket to /visitor that comes back by itself. Requests get an id and a
   * promise; frames without a pending id are pushes. */
  class Channel {
    constructor(url, handlers) {
      this.url = url;
      this.handlers = handlers;
      this.ws = null;
      this.nextId = 1;
      this.pending = new Map();
      this.delays = reconnectDelays();
      this.timer = null;
      this.failures = 0;
      this.everOpen = false;
      this.idle = false;
    }

    get isOpen() {
      return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
    }

    connect() {
      clearTimeout(this.timer);
      this.timer = null;
      if (this.ws !== null) return;
      let ws;
      try {
        ws = new WebSocket(this.url, SUBPROTOCOL);
      } catch (_) {
        this.lost();
        return;
      }
      this.ws = ws;
      if (!this.idle) this.handlers.onConnecting(this.failures);
      ws.onopen = () => {
        this.idle = false;
        this.failures = 0;
        this.everOpen = true;
        this.delays = reconnectDelays();
        this.handlers.onOpen();
      };
      ws.onmessage = (event) => this.receive(event.data);
      ws.onclose = (event) => {
        if (this.ws !== ws) return;
        this.ws = null;
        if (event.code === CLOSE_IDLE) this.idle = true; // quiet until the visitor acts
        else this.lost();
      };
    }

    /** Try now instead of waiting for the next scheduled attempt. */
    reconnectNow() {
      if (this.ws === null) {
        this.delays = reconnectDelays();
        this.connect();
      }
    }

    lost() {
      this.failures += 1;
      const pending = Array.from(this.pending.values());
      this.pending.clear();
      for (const { reject } of pending) reject(new OfflineError());
      const delay = this.delays.next().value;
      this.timer = setTimeout(() => this.connect(), delay);
      this.handlers.onClose(this.failures);
    }

    request(frame) {
      if (!this.isOpen) return Promise.reject(new OfflineError());
      const id = this.nextId++;
      return new Promise((resolve, reject) => {
        this.pending.set(id, { resolve, reject });
        this.ws.send(JSON.stringify({ ...frame, id }));
      });
    }

    receive(data) {
      let frame;
      try {
        frame = JSON.parse(data);
      } catch (_) {
        console.warn("deskbell: ignored a frame that is not JSON");
        return;
      }
      if (!frame || typeof frame !== "object") return;
      if ((frame.type === "ok" || frame.type === "error") && this.pending.has(frame.id)) {
        const { resolve, reject } = this.pending.get(frame.id);
        this.pending.delete(frame.id);
        if (frame.type === "ok") resolve(frame);
        else reject(new RequestError(frame.code, frame.message));
        return;
      }
      if (frame.type === "error") {
        console.warn("deskbell: server error", frame.code, frame.message);
        return;
      }
      this.handlers.onPush(frame);
    }
  }

  // ------------------------------------------------------------------ page

  const $ = (id) => document.getElementById(id);
  const el = {
    root: $("widget"),
    title: $("title"),
    connectionText: $("connection-text"),
    banner: $("banner"),
    bannerText: $("banner-text"),
    bannerAction: $("banner-action"),
    views: {
      loading: $("loading-view"),
      setup: $("setup-view"),
      start: $("start-view"),
      chat: $("chat-view"),
    },
    startForm: $("start-form"),
    startNotice: $("start-notice"),
    startName: $("start-name"),
    startText: $("start-text"),
    startError: $("start-error"),
    startButton: $("start-button"),
    transcript: $("transcript"),
    ended: $("ended"),
    busyLine: $("busy-line"),
    endedText: $("ended-text"),
    newConversation: $("new-conversation"),
    composer: $("composer"),
    composerText: $("composer-text"),
    composerError: $("composer-error"),
  };

  const inbox = (new URLSearchParams(window.location.search).get("inbox") || "").trim();
  let baseTitle = document.title;

  const state = {
    view: "loading",
    token: null,
    name: "",
    conversation: null, // {id, status}
    starting: false,
    startWhenOnline: false,
    outbox: [], // {clientId, text, node, status: "queued" | "sending" | "failed"}
    nodes: new Map(), // message id -> <li>
    unseen: 0,
  };

  function show(view) {
    state.view = view;
    el.root.dataset.view = view;
    for (const [name, node] of Object.entries(el.views)) node.hidden = name !== view;
  }

  function showText(node, text) {
    node.textContent = text || "";
    node.hidden = !text;
  }

  function setConnection(kind, text) {
    el.root.dataset.connection = kind;
    el.connectionText.textContent = text;
  }

  function setBanner(text) {
    showText(el.bannerText, text);
    el.banner.hidden = !text;
  }

  // -- transcript --

  function formatTime(iso) {
    const when = new Date(iso);
    if (Number.isNaN(when.getTime())) return "";
    return when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function isNearBottom() {
    const t = el.transcript;
    return t.scrollHeight - t.scrollTop - t.clientHeight < NEAR_BOTTOM_PX;
  }

  function scrollToBottom() {
    el.transcript.scrollTop = el.transcript.scrollHeight;
  }

  /** A transcript row. `author` is {kind, name}; the body goes in as text. */
  function messageNode(author, body) {
    const kind = AUTHOR_KINDS.includes(author.kind) ? author.kind : "system";
    const li = document.createElement("li");
    li.className = `message message-${kind}`;
    // Consecutive rows of one author are grouped; every visitor row is the visitor's.
    li.dataset.author = kind === "visitor" ? kind : `${kind}:${author.name || ""}`;

    const who = document.createElement("span");
    who.className = "message-author";
    if (kind === "visitor") {
      who.classList.add("visually-hidden");
      who.textContent = "You: ";
    } else {
      who.textContent = kind === "system" ? "" : author.name || "Agent";
    }
    li.append(who);

    const bubble = document.createElement("p");
    bubble.className = "message-body";
    bubble.textContent = body;
    li.append(bubble);

    const foot = document.createElement("span");
    foot.className = "message-foot";
    const time = document.createElement("time");
    time.className = "message-time";
    foot.append(time);
    const status = document.createElement("span");
    status.className = "message-status";
    foot.append(status);
    li.append(foot);
    return li;
  }

  function setTime(li, iso) {
    const time = li.querySelector(".message-time");
    time.dateTime = iso;
    time.textContent = formatTime(iso);
  }

  /** Mark a row that follows one by the same author, so the name is not repeated. */
  function markContinued(li) {
    const prev = li.previousElementSibling;
    li.classList.toggle("continued", !!prev && prev.dataset.author === li.dataset.author);
  }

  function appendNode(li) {
    const stick = isNearBottom();
    el.transcript.append(li);
    markContinued(li);
    if (stick) scrollToBottom();
  }

  /** Show a stored message once, whichever of `ok`, push or attach brings it first. */
  function addMessage(message) {
    if (state.nodes.has(message.id)) return false;
    const li = messageNode(message.author, message.body);
    li.dataset.id = message.id;
    setTime(li, message.created_at);
    state.nodes.set(message.id, li);
    appendNode(li);
    return true;
  }

  function renderConversation(conversation) {
    state.conversation = { id: conversation.id, status: conversation.status };
    showBusy(conversation.busy === true);
    el.transcript.setAttribute("aria-busy", "true"); // do not read the whole history aloud
    el.transcript.replaceChildren();
    state.nodes.clear();
    for (const message of conversation.messages) addMessage(message);
    for (const entry of state.outbox) appendNode(entry.node);
    el.transcript.removeAttribute("aria-busy");
    el.transcript.classList.remove("loading");
    scrollToBottom();
    showStatus(conversation.status);
  }

  function showStatus(status) {
    if (state.conversation) state.conversation.status = status;
    if (status === "resolved") {
      endConversation("This conversation has been closed. Thanks for chatting with us!");
    } else {
      el.ended.hidden = true;
      el.composer.hidden = false;
    }
  }

  /** The honest line while nobody can answer soon; the server's `team_status` decides. */
  function showBusy(busy) {
    const resolved = state.conversation && state.conversation.status === "resolved";
    el.busyLine.hidden = !busy || resolved;
  }

  function endConversation(text) {
    el.transcript.classList.remove("loading");
    el.endedText.textContent = text;
    el.ended.hidden = false;
    el.composer.hidden = true;
    setBanner("");
  }

  // -- outbox: messages typed by the visitor, until the server has them --

  function setEntryStatus(entry, status, text) {
    entry.status = status;
    entry.node.classList.toggle("pending", status !== "failed");
    entry.node.classList.toggle("failed", status === "failed");
    const label = entry.node.querySelector(".message-status");
    label.replaceChildren();
    if (status === "failed") {
      label.textContent = "Not sent. ";
      const retry = document.createElement("button");
      retry.type = "button";
      retry.className = "link";
      retry.textContent = "Retry";
      retry.addEventListener("click", () => {
        showText(el.composerError, "");
        sendEntry(entry);
      });
      label.append(retry);
    } else {
      label.textContent = text;
    }
  }

  function queueMessage(text) {
    const entry = {
      clientId: randomId(),
      text,
      node: messageNode({ kind: "visitor", name: state.name }, text),
      status: "queued",
    };
    state.outbox.push(entry);
    appendNode(entry.node);
    scrollToBottom();
    sendEntry(entry);
  }

  function sendEntry(entry) {
    if (!channel.isOpen || !state.conversation) {
      setEntryStatus(entry, "queued", "Waiting for connection…");
      return;
    }
    setEntryStatus(entry, "sending", "Sending…");
    channel
      .request({ type: "send", text: entry.text, client_msg_id: entry.clientId })
      .then((reply) => settle(entry, reply.message))
      .catch((error) => {
        if (!state.outbox.includes(entry)) return;
        if (error.code === "offline") {
          setEntryStatus(entry, "queued", "Waiting for connection…");
        } else {
          setEntryStatus(entry, "failed");
          showText(el.composerError, describeError(error, "send"));
        }
      });
  }

  /** The server stored `entry` as `message`: the row becomes that message's row. */
  function settle(entry, message) {
    const index = state.outbox.indexOf(entry);
    if (index < 0) return;
    state.outbox.splice(index, 1);
    const existing = state.nodes.get(message.id);
    if (existing && existing !== entry.node) {
      entry.node.remove(); // already shown (a re-attach listed it before this reply)
      return;
    }
    entry.node.dataset.id = message.id;
    entry.node.classList.remove("pending", "failed");
    entry.node.querySelector(".message-status").replaceChildren();
    setTime(entry.node, message.created_at);
    state.nodes.set(message.id, entry.node);
  }

  function flushOutbox() {
    for (const entry of state.outbox) {
      if (entry.status === "queued") sendEntry(entry);
    }
  }

  // -- server pushes --

  function onPush(frame) {
    if (!state.conversation || frame.conversation_id !== state.conversation.id) return;
    if (frame.type === "message" && frame.message) {
      const message = frame.message;
      if (state.nodes.has(message.id)) return;
      // Our own message can be pushed before the `ok` of its `send` arrives.
      const mine =
        message.author.kind === "visitor" &&
        state.outbox.find((e) => e.status === "sending" && e.text === message.body);
      if (mine) {
        settle(mine, message);
        return;
      }
      addMessage(message);
      if (message.author.kind === "agent") showBusy(false); // an answer came
      if (message.author.kind !== "visitor" && document.hidden) {
        state.unseen += 1;
        document.title = `(${state.unseen}) ${baseTitle}`;
      }
    } else if (frame.type === "status") {
      showStatus(frame.status);
      if (frame.status === "resolved") showBusy(false);
    } else if (frame.type === "team_status") {
      showBusy(frame.busy === true);
    }
  }

  // -- session: start, attach, new --

  function saveSession() {
    savedSession.save(inbox, { token: state.token, name: state.name });
  }

  function attach() {
    const token = state.token;
    channel
      .request({ type: "attach", token })
      .then((reply) => {
        if (state.token !== token) return;
        setBanner("");
        renderConversation(reply.conversation);
        flushOutbox();
      })
      .catch((error) => {
        if (state.token !== token || error.code === "offline") return; // re-attach on reconnect
        if (error.code === "not_found" || error.code === "unauthorized") {
          state.token = null;
          saveSession();
          endConversation("This conversation is no longer available.");
        } else {
          setBanner(`We could not load your conversation. ${describeError(error, "attach")}`);
        }
      });
  }

  function startChat() {
    const name = el.startName.value.trim();
    const text = el.startText.value;
    showText(el.startError, "");
    if (!name) return startProblem(el.startName, "Please enter your name.");
    if (name.length > MAX_NAME_CHARS)
      return startProblem(el.startName, `Please use at most ${MAX_NAME_CHARS} characters for your name.`);
    if (!text.trim()) return startProblem(el.startText, "Please write your message.");
    if (text.length > MAX_BODY_CHARS)
      return startProblem(el.startText, `Messages can be at most ${MAX_BODY_CHARS.toLocaleString()} characters.`);
    if (state.starting) return;
    if (!channel.isOpen) {
      state.startWhenOnline = true;
      if (!channel.idle)
        showText(el.startError, "You are offline. We will start your chat as soon as the connection is back.");
      channel.reconnectNow();
      return;
    }
    state.starting = true;
    state.startWhenOnline = false;
    el.startButton.disabled = true;
    el.startButton.textContent = "Starting…";
    channel
      .request({ type: "start", inbox, name, text })
      .then((reply) => {
        state.token = reply.token;
        state.name = name;
        saveSession();
        el.startText.value = "";
        show("chat");
        renderConversation(reply.conversation);
        el.composerText.focus();
      })
      .catch((error) => startProblem(null, describeError(error, "start")))
      .finally(() => {
        state.starting = false;
        el.startButton.disabled = false;
        el.startButton.textContent = "Start chat";
      });
  }

  function startProblem(field, text) {
    showText(el.startError, text);
    if (field) {
      field.setAttribute("aria-invalid", "true");
      field.focus();
    }
  }

  function newConversation(notice) {
    state.token = null;
    state.conversation = null;
    state.outbox = [];
    state.nodes.clear();
    el.transcript.replaceChildren();
    el.ended.hidden = true;
    el.composer.hidden = false;
    showText(el.composerError, "");
    saveSession();
    showText(el.startNotice, notice || "");
    el.startName.value = state.name;
    show("start");
    (state.name ? el.startText : el.startName).focus();
  }

  // -- connection state --

  const channel = new Channel(
    `${window.location.protocol === "https:" ? "wss:" : "ws:"}//${window.location.host}/visitor`,
    {
      onConnecting(failures) {
        if (failures === 0) setConnection("connecting", "Connecting…");
      },
      onOpen() {
        setConnection("online", "Online · we reply here");
        setBanner("");
        if (state.token) attach();
        else if (state.startWhenOnline && state.view === "start") startChat();
      },
      onClose(failures) {
        setConnection("offline", "Offline");
        if (state.view === "chat" && !el.ended.hidden) return; // nothing left to send
        setBanner(
          failures > 3 || !channel.everOpen
            ? "We can't reach the help desk right now. Check your internet connection; we keep trying."
            : "Connection lost. Reconnecting…",
        );
      },
      onPush,
    },
  );

  // -- wiring --

  function bind() {
    el.bannerAction.addEventListener("click", () => {
      if (channel.isOpen && state.token) attach(); // connected, but loading failed
      else channel.reconnectNow();
    });

    el.startForm.addEventListener("submit", (event) => {
      event.preventDefault();
      startChat();
    });
    for (const field of [el.startName, el.startText]) {
      field.addEventListener("input", () => field.removeAttribute("aria-invalid"));
      // Connect again (after an idle close) while the visitor is still typing.
      field.addEventListener("focus", () => channel.isOpen || channel.reconnectNow());
      field.addEventListener("input", () => channel.isOpen || channel.reconnectNow());
    }

    el.composer.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = el.composerText.value;
      showText(el.composerError, "");
      if (!text.trim()) return;
      if (text.length > MAX_BODY_CHARS) {
        showText(el.composerError, describeError({ code: "too_large" }, "send"));
        return;
      }
      el.composerText.value = "";
      fitComposer();
      queueMessage(text);
    });
    // Enter sends; Shift+Enter is a new line; never send in the middle of IME input.
    const enterSubmits = (form) => (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    };
    el.composerText.addEventListener("keydown", enterSubmits(el.composer));
    el.startText.addEventListener("keydown", enterSubmits(el.startForm));
    el.composerText.addEventListener("input", fitComposer);

    el.newConversation.addEventListener("click", (event) => {
      event.preventDefault();
      newConversation("");
    });

    window.addEventListener("online", () => channel.reconnectNow());
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) return;
      state.unseen = 0;
      document.title = baseTitle;
      channel.reconnectNow(); // a laptop waking up should not wait out the backoff
    });
  }

  /** Grow the composer with its text, up to the height set in CSS. */
  function fitComposer() {
    const box = el.composerText;
    box.style.height = "auto"; // CSSOM, which the CSP allows (it forbids inline styles)
    box.style.height = `${box.scrollHeight + box.offsetHeight - box.clientHeight}px`;
    // A scroll bar only once the text is taller than the box may grow.
    box.style.overflowY = box.clientHeight < box.scrollHeight ? "auto" : "hidden";
  }

  function main() {
    bind();
    if (!inbox) {
      setConnection("offline", "Not set up");
      show("setup");
      return;
    }
    el.title.textContent = inbox;
    baseTitle = `${inbox} · chat`;
    document.title = baseTitle;
    const saved = savedSession.load(inbox);
    state.name = typeof saved.name === "string" ? saved.name : "";
    state.token = typeof saved.token === "string" && saved.token ? saved.token : null;
    if (state.token) {
      el.transcript.classList.add("loading");
      show("chat");
    } else {
      el.startName.value = state.name;
      show("start");
    }
    channel.connect();
  }

  main();
})();
