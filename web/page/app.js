// app.js: the join page. A Mumble client over the web listener's
// WebSocket (mumble.js) that talks and listens over one WebRTC audio
// transceiver: it sends the microphone while the user talks and receives
// the server's mix of everything a Mumble client in its place would hear.
"use strict";

(() => {
  const TEXT = {
    en: {
      title: "Join the meeting", name: "Your name", password: "Server password (if any)",
      token: "Access token (if any)", join: "Join", leave: "Leave",
      micHint: "Your browser will ask for the microphone.",
      insecure: "This page needs a secure connection (https, or http://localhost) for the microphone.",
      noMic: "No microphone: ", connecting: "Connecting …", connected: "Connected",
      reconnecting: (s) => `Connection lost, trying again in ${s} s …`,
      mute: "Mute", unmute: "Unmute", deafen: "Deafen", undeafen: "Undeafen",
      ptt: "Hold to talk", pttHint: "or hold the space bar", vad: "Voice activation", pttMode: "Push to talk",
      talking: "You are talking", suppressed: "You are suppressed: ask for the floor to speak.",
      serverMuted: "You were muted by a moderator.", recording: "This channel is being recorded.",
      someone: "Someone is speaking", hand: "Raise hand", withdraw: "Withdraw hand", queue: "Queue",
      place: (n) => `You are number ${n} in the queue.`, floor: "You have the floor.",
      chair: "Chair", next: "Next", revoke: "End turn", clear: "Clear queue", muteall: "Mute all", unmuteall: "Unmute all",
      chatTo: "To", channelChat: "channel", privateTo: "private", send: "Send", message: "Message",
      toChannel: "back to the channel", channels: "Channels", chat: "Chat", you: "you",
      denied: "Not allowed: ", rejected: "The server refused: ", kicked: "You were removed: ",
      onWeb: "web", muted: "muted", deaf: "deaf", suppressedShort: "suppressed", rec: "recording",
      server: "Server", noChannel: (c) => `There is no channel "${c}"; you are in the default channel.`,
      signIn: "Sign in with your organisation's account",
    },
    de: {
      title: "Der Sitzung beitreten", name: "Dein Name", password: "Serverpasswort (falls nötig)",
      token: "Zugangstoken (falls nötig)", join: "Beitreten", leave: "Verlassen",
      micHint: "Dein Browser fragt nach dem Mikrofon.",
      insecure: "Für das Mikrofon braucht diese Seite eine sichere Verbindung (https oder http://localhost).",
      noMic: "Kein Mikrofon: ", connecting: "Verbinde …", connected: "Verbunden",
      reconnecting: (s) => `Verbindung verloren, neuer Versuch in ${s} s …`,
      mute: "Stumm", unmute: "Mikro an", deafen: "Taub", undeafen: "Hören",
      ptt: "Zum Sprechen halten", pttHint: "oder die Leertaste halten", vad: "Sprachaktivierung", pttMode: "Push-to-Talk",
      talking: "Du sprichst", suppressed: "Du bist stummgeschaltet: melde dich, um zu sprechen.",
      serverMuted: "Ein Moderator hat dich stummgeschaltet.", recording: "Dieser Kanal wird aufgenommen.",
      someone: "Jemand spricht", hand: "Melden", withdraw: "Meldung zurückziehen", queue: "Redeliste",
      place: (n) => `Du bist Nummer ${n} auf der Redeliste.`, floor: "Du hast das Wort.",
      chair: "Sitzungsleitung", next: "Nächste:r", revoke: "Wort entziehen", clear: "Liste leeren", muteall: "Alle stumm", unmuteall: "Stumm aufheben",
      chatTo: "An", channelChat: "Kanal", privateTo: "privat", send: "Senden", message: "Nachricht",
      toChannel: "zurück an den Kanal", channels: "Kanäle", chat: "Chat", you: "du",
      denied: "Nicht erlaubt: ", rejected: "Der Server lehnt ab: ", kicked: "Du wurdest entfernt: ",
      onWeb: "Web", muted: "stumm", deaf: "taub", suppressedShort: "unterdrückt", rec: "Aufnahme",
      server: "Server", noChannel: (c) => `Den Kanal „${c}“ gibt es nicht; du bist im Standardkanal.`,
      signIn: "Mit dem Konto deiner Organisation anmelden",
    },
  };
  const lang = (navigator.language || "en").toLowerCase().startsWith("de") ? "de" : "en";
  const L = TEXT[lang];
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const MUTE_DEAFEN = 0x10, WRITE = 0x1; // Mumble permission bits: a chair has MuteDeafen
  const USERNAME_IN_USE = 5; // Reject.type
  const VAD_THRESHOLD = 0.02, VAD_HOLD_MS = 400; // RMS of full scale
  const RX_THRESHOLD = 0.002; // what counts as someone speaking in what we receive

  // S is the page's whole state; window.plenum exposes it to the tests
  // and to anyone debugging in the console.
  const S = {
    ws: null, pc: null, sender: null, mic: null, audioCtx: null,
    micAnalyser: null, rxAnalyser: null, remoteStream: null,
    session: null, channels: new Map(), users: new Map(), perms: new Map(),
    name: "", password: "", tokens: [], wantChannel: params.get("channel") || "",
    mode: localStorage.getItem("plenum.mode") || "vad", pttDown: false, vadUntil: 0,
    transmitting: false, micLevel: 0, rxLevel: 0, selfMute: false, selfDeaf: false,
    chatTarget: null, place: 0, hasFloor: false, retries: 0, retryTimer: 0,
    joined: false, everJoined: false, stopped: true, pingTimer: 0, iceTimer: 0, lastHeard: 0,
    marks: {}, // performance.now() of joinClicked, serverSync, iceConnected, firstAudio
    lostReasons: [], // why the connection was lost, the last 20 times
    bursts: 0, // how often sending started
  };
  window.plenum = S;

  // ---- the login form ------------------------------------------------

  function init() {
    document.documentElement.lang = lang;
    for (const el of document.querySelectorAll("[data-t]")) el.textContent = L[el.dataset.t];
    for (const el of document.querySelectorAll("[data-ph]")) el.placeholder = L[el.dataset.ph];
    document.title = L.title + (S.wantChannel ? " · " + S.wantChannel : "");
    $("channel-name").textContent = S.wantChannel;
    $("name").value = params.get("name") || localStorage.getItem("plenum.name") || "";
    if (!window.isSecureContext || !navigator.mediaDevices) show("login-error", L.insecure);
    $("login").addEventListener("submit", (e) => { e.preventDefault(); join(); });
    offerSignIn();
    $("mode").value = S.mode;
    $("ptt").title = L.pttHint;
    $("mode").addEventListener("change", () => { S.mode = $("mode").value; localStorage.setItem("plenum.mode", S.mode); update(); });
    $("mute").addEventListener("click", () => (S.selfMute ? setSelf(false, false) : setSelf(true, S.selfDeaf)));
    $("deaf").addEventListener("click", () => setSelf(!S.selfDeaf, !S.selfDeaf));
    const ptt = $("ptt");
    ptt.addEventListener("pointerdown", (e) => { e.preventDefault(); ptt.setPointerCapture(e.pointerId); setPTT(true); });
    for (const ev of ["pointerup", "pointercancel", "lostpointercapture"]) ptt.addEventListener(ev, () => setPTT(false));
    ptt.addEventListener("contextmenu", (e) => e.preventDefault());
    addEventListener("keydown", (e) => { if (e.code === "Space" && !typing(e)) { e.preventDefault(); if (!e.repeat) setPTT(true); } });
    addEventListener("keyup", (e) => { if (e.code === "Space" && !typing(e)) { e.preventDefault(); setPTT(false); } });
    addEventListener("blur", () => setPTT(false));
    $("chat-form").addEventListener("submit", (e) => { e.preventDefault(); sendChat(); });
    $("chat-target-clear").addEventListener("click", () => { S.chatTarget = null; update(); });
    $("hand").addEventListener("click", () => command(S.place ? "!hand withdraw" : "!hand"));
    for (const b of document.querySelectorAll("[data-cmd]")) b.addEventListener("click", () => command(b.dataset.cmd));
    $("leave").addEventListener("click", leave);
    addEventListener("online", () => { if (!S.stopped && !S.joined) reconnectNow(); });
    setInterval(tick, 50);
  }

  // offerSignIn shows the single sign-on link when the server has one
  // ([auth.oidc]); without it the path is this page, which is not JSON.
  async function offerSignIn() {
    try {
      const r = await fetch("/auth/oidc/info", { cache: "no-store" });
      if (!r.ok || !(r.headers.get("Content-Type") || "").startsWith("application/json")) return;
      const info = await r.json();
      if (typeof info.login !== "string" || !info.login.startsWith("/auth/")) return;
      const a = $("signin");
      a.href = info.login;
      a.textContent = L.signIn;
      a.hidden = false;
    } catch (_) {
      // no sign-in link
    } finally {
      S.signInChecked = true;
    }
  }

  function typing(e) {
    return ["INPUT", "TEXTAREA", "SELECT"].includes(e.target.tagName);
  }

  async function join() {
    S.marks.joinClicked = performance.now();
    hide("login-error");
    S.name = $("name").value.trim();
    S.password = $("password").value;
    S.tokens = $("token").value.split(/[\s,]+/).filter(Boolean);
    if (!S.name) return;
    localStorage.setItem("plenum.name", S.name);
    $("join").disabled = true;
    try {
      // Created in the click, so that the browser lets it play.
      S.audioCtx = S.audioCtx || new AudioContext();
      S.audioCtx.resume();
      $("audio").play().catch(() => {}); // some browsers allow playing later only after this
      S.mic = S.mic || await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (err) {
      show("login-error", L.noMic + err.message);
      $("join").disabled = false;
      return;
    }
    S.micAnalyser = S.audioCtx.createAnalyser();
    S.micAnalyser.fftSize = 1024;
    S.audioCtx.createMediaStreamSource(S.mic).connect(S.micAnalyser);
    S.stopped = false;
    S.everJoined = false;
    $("login-view").hidden = true;
    $("room-view").hidden = false;
    connect();
  }

  // ---- the connection --------------------------------------------------

  function connect() {
    clearTimeout(S.retryTimer);
    status(L.connecting);
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws?rejoin=" + rejoinKey();
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    S.ws = ws;
    ws.onopen = () => {
      send("Version", { version_v1: 0x10500, version_v2: 1 * 2 ** 48 + 5 * 2 ** 32, release: "Plenum web", os: "Browser" });
      send("Authenticate", { username: S.name, password: S.password || undefined, tokens: S.tokens, opus: true });
    };
    ws.onmessage = (e) => {
      if (ws !== S.ws) return;
      let m;
      try { m = Mumble.decode(e.data); } catch (err) { console.warn("bad frame", err); return; }
      S.lastHeard = performance.now();
      const h = handlers[m.name];
      if (h) h(m.msg);
    };
    ws.onclose = (e) => { if (ws === S.ws) lost("websocket closed " + e.code + " " + e.reason); };
  }

  // rejoinKey is this tab's random key, sent with every WebSocket: with
  // it the server knows a page that lost its connection as the same
  // person and lets it back in at once, instead of finding the name in
  // use until the old session times out. It lives in the tab's
  // sessionStorage only: a new tab is a new person.
  // Where storage is refused (some private modes), the key lives as long
  // as the page.
  function rejoinKey() {
    if (S.rejoinKey) return S.rejoinKey;
    let key = null;
    try { key = sessionStorage.getItem("plenum.rejoin"); } catch (e) { /* no storage */ }
    if (!/^[0-9a-f]{32}$/.test(key || "")) {
      key = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
      try { sessionStorage.setItem("plenum.rejoin", key); } catch (e) { /* no storage */ }
    }
    S.rejoinKey = key;
    return key;
  }

  function send(type, msg) {
    if (S.ws && S.ws.readyState === WebSocket.OPEN) S.ws.send(Mumble.encode(type, msg));
  }

  // lost tears the connection down and, unless the user left or the
  // server refused, tries again with a growing pause.
  function lost(why) {
    S.lostReasons.push(why || "closed");
    if (S.lostReasons.length > 20) S.lostReasons.shift();
    teardown();
    if (S.stopped) return;
    const wait = Math.min(15, 2 ** S.retries) * (0.75 + Math.random() * 0.5);
    S.retries = Math.min(S.retries + 1, 4);
    status(L.reconnecting(Math.round(wait)), true);
    S.retryTimer = setTimeout(connect, wait * 1000);
  }

  function reconnectNow() {
    clearTimeout(S.retryTimer);
    connect();
  }

  function teardown() {
    const ws = S.ws, pc = S.pc;
    S.ws = null; S.pc = null; S.sender = null; S.joined = false; S.transmitting = false;
    S.remoteStream = null; S.rxAnalyser = null;
    clearInterval(S.pingTimer);
    clearTimeout(S.iceTimer);
    if (ws) { ws.onclose = null; try { ws.close(); } catch (e) { /* already closed */ } }
    if (pc) pc.close();
    S.users.clear(); S.channels.clear(); S.perms.clear();
    render();
  }

  function stop(message) {
    S.stopped = true;
    teardown();
    $("room-view").hidden = true;
    $("login-view").hidden = false;
    $("join").disabled = false;
    if (message) show("login-error", message);
  }

  function leave() { stop(""); }

  // ---- WebRTC ------------------------------------------------------------

  async function startRTC() {
    const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle", rtcpMuxPolicy: "require" });
    S.pc = pc;
    const tr = pc.addTransceiver(S.mic.getAudioTracks()[0], { direction: "sendrecv", streams: [S.mic] });
    S.sender = tr.sender;
    await S.sender.replaceTrack(null); // nothing is sent until the user talks
    S.transmitting = false;
    pc.ontrack = (e) => {
      S.remoteStream = e.streams[0] || new MediaStream([e.track]);
      const audio = $("audio");
      audio.srcObject = S.remoteStream;
      audio.muted = S.selfDeaf;
      audio.play().catch(() => {});
      S.rxAnalyser = S.audioCtx.createAnalyser();
      S.rxAnalyser.fftSize = 1024;
      S.audioCtx.createMediaStreamSource(S.remoteStream).connect(S.rxAnalyser);
    };
    pc.oniceconnectionstatechange = () => {
      if (pc !== S.pc) return;
      const st = pc.iceConnectionState;
      clearTimeout(S.iceTimer);
      if (st === "connected" || st === "completed") {
        S.marks.iceConnected = S.marks.iceConnected || performance.now();
        S.retries = 0;
        status(L.connected);
      } else if (st === "failed") lost("ICE failed");
      else if (st === "disconnected") S.iceTimer = setTimeout(() => { if (pc === S.pc) lost("ICE disconnected"); }, 4000);
    };
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    if (pc !== S.pc) return;
    S.ws.send(Mumble.signal({ type: "offer", sdp: pc.localDescription.sdp }));
  }

  async function signal(m) {
    if (m.type === "answer" && S.pc) {
      const pc = S.pc;
      try {
        S.answer = m.sdp;
      await pc.setRemoteDescription({ type: "answer", sdp: m.sdp });
      } catch (err) {
        if (pc === S.pc) lost("answer: " + err);
      }
    } else if (m.type === "error") {
      note(L.server + ": " + m.message, "error");
    }
  }

  // ---- talking -----------------------------------------------------------

  function setPTT(down) {
    if (S.pttDown === down) return;
    S.pttDown = down;
    $("ptt").classList.toggle("down", down);
    update();
  }

  function level(analyser) {
    if (!analyser) return 0;
    const buf = new Float32Array(analyser.fftSize);
    analyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (const v of buf) sum += v * v;
    return Math.sqrt(sum / buf.length);
  }

  // tick measures both levels and decides whether to send, every 50 ms.
  function tick() {
    if (S.stopped) return;
    S.micLevel = level(S.micAnalyser);
    S.rxLevel = level(S.rxAnalyser);
    const now = performance.now();
    if (S.micLevel > VAD_THRESHOLD) S.vadUntil = now + VAD_HOLD_MS;
    if (S.rxLevel > RX_THRESHOLD && !S.marks.firstAudio && S.joined) S.marks.firstAudio = now;
    $("mic-meter").style.width = meter(S.micLevel);
    $("rx-meter").style.width = meter(S.rxLevel);
    $("someone").classList.toggle("on", S.rxLevel > RX_THRESHOLD && !S.selfDeaf);
    update();
  }

  // meter shows a level on a 60 dB scale, as ears hear loudness.
  function meter(rms) {
    const db = 20 * Math.log10(Math.max(rms, 1e-6));
    return Math.max(0, Math.min(100, (db + 60) * 100 / 60)) + "%";
  }

  function me() { return S.users.get(S.session); }

  function wantsToTalk() {
    const u = me();
    if (!u || !S.joined || S.selfMute || S.selfDeaf || u.mute || u.suppress) return false;
    return S.mode === "ptt" ? S.pttDown : S.pttDown || performance.now() < S.vadUntil;
  }

  function update() {
    const talk = wantsToTalk();
    if (talk !== S.transmitting && S.sender) {
      S.transmitting = talk;
      if (talk) S.bursts++;
      S.sender.replaceTrack(talk ? S.mic.getAudioTracks()[0] : null).catch(() => {});
      renderUsers();
    }
    const u = me() || {};
    $("mute").textContent = S.selfMute ? L.unmute : L.mute;
    $("mute").classList.toggle("active", S.selfMute);
    $("deaf").textContent = S.selfDeaf ? L.undeafen : L.deafen;
    $("deaf").classList.toggle("active", S.selfDeaf);
    $("ptt").textContent = S.transmitting ? L.talking : L.ptt;
    $("ptt").classList.toggle("talking", S.transmitting);
    $("banner-suppressed").hidden = !u.suppress;
    $("banner-muted").hidden = !u.mute;
    const ch = u.channel_id;
    $("banner-recording").hidden = ![...S.users.values()].some((x) => x.channel_id === ch && x.recording);
    const c = S.channels.get(ch);
    $("room-channel").textContent = c ? c.name : "";
    const hall = c && /Floor: .*Queue: /.test(c.description || "");
    $("floor").hidden = !hall;
    const perm = S.perms.get(ch) || 0;
    $("chair").hidden = !hall || !(perm & (MUTE_DEAFEN | WRITE));
    $("hand").textContent = S.place ? L.withdraw : L.hand;
    $("place").textContent = S.hasFloor ? L.floor : S.place ? L.place(S.place) : "";
    const target = S.chatTarget !== null && S.users.get(S.chatTarget);
    $("chat-target").textContent = target ? L.privateTo + ": " + target.name : L.channelChat + ": " + (c ? c.name : "");
    $("chat-target-clear").hidden = !target;
    document.body.classList.toggle("ptt-mode", S.mode === "ptt");
  }

  function setSelf(mute, deaf) {
    if (deaf) mute = true;
    S.selfMute = mute;
    S.selfDeaf = deaf;
    $("audio").muted = deaf;
    send("UserState", { session: S.session, self_mute: mute, self_deaf: deaf });
    update();
  }

  // ---- what the server says ---------------------------------------------

  const handlers = {
    Signal: signal,
    Reject: (m) => {
      // After a network change the server may still hold our old
      // session until it notices that its connection is dead; the name
      // is then "in use" for a while. Keep trying (the socket's close
      // does) instead of giving up.
      if (m.type === USERNAME_IN_USE && S.everJoined) {
        S.lostReasons.push("name still in use");
        return;
      }
      stop(L.rejected + (m.reason || m.type));
    },
    ServerSync: (m) => {
      S.session = m.session;
      S.joined = true;
      S.everJoined = true;
      S.lastHeard = performance.now();
      S.marks.serverSync = S.marks.serverSync || performance.now();
      if (m.welcome_text) note(text(m.welcome_text), "server");
      S.pingTimer = setInterval(() => {
        // A connection that answers nothing (a network change can leave
        // it half-open) is given up after 30 s.
        if (performance.now() - S.lastHeard > 30000) return lost("no answer for 30 s");
        send("Ping", { timestamp: Date.now() });
      }, 10000);
      goToWantedChannel();
      if (S.selfMute || S.selfDeaf) send("UserState", { session: S.session, self_mute: S.selfMute, self_deaf: S.selfDeaf });
      startRTC().catch((err) => { note(String(err), "error"); lost(String(err)); });
      render();
    },
    ChannelState: (m) => {
      const c = S.channels.get(m.channel_id) || { channel_id: m.channel_id, parent: null, position: 0 };
      for (const k of ["parent", "name", "description", "position"]) if (m[k] !== undefined) c[k] = m[k];
      S.channels.set(m.channel_id, c);
      render();
    },
    ChannelRemove: (m) => { S.channels.delete(m.channel_id); render(); },
    UserState: (m) => {
      const u = S.users.get(m.session) || { session: m.session };
      const moved = m.channel_id !== undefined && m.channel_id !== u.channel_id;
      Object.assign(u, m);
      S.users.set(m.session, u);
      if (m.session === S.session && S.joined) {
        if (moved) {
          S.place = 0; S.hasFloor = false;
          S.wantChannel = path(m.channel_id);
          send("PermissionQuery", { channel_id: m.channel_id });
        }
        if (m.self_mute !== undefined) S.selfMute = m.self_mute;
        if (m.self_deaf !== undefined) S.selfDeaf = m.self_deaf;
      }
      render();
    },
    UserRemove: (m) => {
      if (m.session === S.session) return stop(L.kicked + (m.reason || ""));
      S.users.delete(m.session);
      if (S.chatTarget === m.session) S.chatTarget = null;
      render();
    },
    TextMessage: (m) => {
      const body = text(m.message);
      const from = S.users.get(m.actor);
      const priv = (m.session || []).length > 0;
      if (!from) floorAnswer(body);
      note(body, priv ? "private" : "channel", from ? from.name : L.server, priv);
    },
    PermissionDenied: (m) => note(L.denied + (m.reason || m.name || ""), "error"),
    PermissionQuery: (m) => {
      if (m.channel_id !== undefined && m.permissions !== undefined) S.perms.set(m.channel_id, m.permissions);
      update();
    },
    ServerConfig: (m) => { if (m.message_length) $("chat-input").maxLength = m.message_length; },
  };

  // floorAnswer follows the floor's private answers (floor/text.go) to
  // show one's place in the queue.
  function floorAnswer(body) {
    const place = /number (\d+) in the queue/.exec(body);
    if (place) { S.place = +place[1]; S.hasFloor = false; }
    else if (/You left the queue|Your turn has ended|speaking time is over/.test(body)) { S.place = 0; S.hasFloor = false; }
    else if (/You have the floor/.test(body)) { S.place = 0; S.hasFloor = true; }
  }

  function path(id) {
    const names = [];
    for (let c = S.channels.get(id); c && c.parent !== undefined && c.parent !== null && c.channel_id !== 0; c = S.channels.get(c.parent)) names.unshift(c.name);
    return names.join("/");
  }

  function goToWantedChannel() {
    if (!S.wantChannel) return;
    const want = S.wantChannel.toLowerCase();
    let found = null;
    for (const id of S.channels.keys()) if (path(id).toLowerCase() === want) found = id;
    if (found === null) for (const [id, c] of S.channels) if ((c.name || "").toLowerCase() === want) { found = id; break; }
    if (found === null) { note(L.noChannel(S.wantChannel), "error"); S.wantChannel = ""; return; }
    const u = me();
    if (!u || u.channel_id !== found) send("UserState", { session: S.session, channel_id: found });
    else send("PermissionQuery", { channel_id: found });
  }

  function command(cmd) {
    const u = me();
    if (u) send("TextMessage", { channel_id: [u.channel_id], message: escapeHTML(cmd) });
  }

  function sendChat() {
    const input = $("chat-input");
    const msg = input.value.trim();
    const u = me();
    if (!msg || !u) return;
    const html = escapeHTML(msg).replace(/\n/g, "<br>");
    if (S.chatTarget !== null && S.users.has(S.chatTarget)) {
      send("TextMessage", { session: [S.chatTarget], message: html });
      note(msg, "private", L.you + " → " + S.users.get(S.chatTarget).name, true);
    } else {
      send("TextMessage", { channel_id: [u.channel_id], message: html });
      if (!msg.startsWith("!")) note(msg, "channel", L.you);
    }
    input.value = "";
  }

  // ---- rendering -----------------------------------------------------------

  function escapeHTML(s) {
    return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }

  // text turns a message's HTML into plain text, in an inert document.
  function text(html) {
    const doc = new DOMParser().parseFromString(String(html).replace(/<br\s*\/?>/gi, "\n").replace(/<\/p>/gi, "\n"), "text/html");
    return (doc.body.textContent || "").trim();
  }

  function el(tag, cls, content) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (content !== undefined) e.textContent = content;
    return e;
  }

  function note(body, kind, from, priv) {
    const log = $("chat-log");
    const li = el("li", "msg " + kind);
    const time = new Date().toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" });
    li.append(el("span", "time", time));
    if (from) li.append(el("span", "from", from + (priv ? " (" + L.privateTo + ")" : "") + ": "));
    li.append(el("span", "body", body));
    const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 30;
    log.append(li);
    while (log.children.length > 300) log.firstChild.remove();
    if (atEnd) log.scrollTop = log.scrollHeight;
  }

  function status(msg, bad) {
    $("status").textContent = msg;
    $("status").classList.toggle("bad", !!bad);
  }

  function show(id, msg) { $(id).textContent = msg; $(id).hidden = false; }
  function hide(id) { $(id).hidden = true; }

  // render redraws the tree at most every 50 ms: joining a plenary
  // brings hundreds of UserStates at once, and redrawing after each
  // would take a phone seconds.
  let renderQueued = false;
  function render() {
    if (renderQueued) return;
    renderQueued = true;
    setTimeout(() => {
      renderQueued = false;
      renderUsers();
      update();
    }, 50);
  }

  function renderUsers() {
    const tree = $("tree");
    tree.textContent = "";
    const byParent = new Map();
    for (const c of S.channels.values()) {
      const p = c.channel_id === 0 ? -1 : c.parent;
      if (!byParent.has(p)) byParent.set(p, []);
      byParent.get(p).push(c);
    }
    const usersIn = new Map();
    for (const u of S.users.values()) {
      if (!usersIn.has(u.channel_id)) usersIn.set(u.channel_id, []);
      usersIn.get(u.channel_id).push(u);
    }
    const mine = (me() || {}).channel_id;
    const add = (parent, ul) => {
      const kids = (byParent.get(parent) || []).sort((a, b) => (a.position || 0) - (b.position || 0) || (a.name || "").localeCompare(b.name || ""));
      for (const c of kids) {
        const li = el("li", "channel" + (c.channel_id === mine ? " mine" : ""));
        const name = el("button", "channel-name", c.name || "");
        name.type = "button";
        name.addEventListener("click", () => send("UserState", { session: S.session, channel_id: c.channel_id }));
        li.append(name);
        const users = (usersIn.get(c.channel_id) || []).sort((a, b) => (a.name || "").localeCompare(b.name || ""));
        if (users.length) {
          const uul = el("ul", "users");
          for (const u of users) uul.append(userItem(u));
          li.append(uul);
        }
        const sub = el("ul", "channels");
        add(c.channel_id, sub);
        if (sub.children.length) li.append(sub);
        ul.append(li);
      }
    };
    add(-1, tree);
  }

  function userItem(u) {
    const self = u.session === S.session;
    const li = el("li", "user" + (self ? " self" : "") + (self && S.transmitting ? " talking" : ""));
    const b = el("button", "user-name", u.name || "?");
    b.type = "button";
    b.title = u.comment ? text(u.comment) : "";
    if (!self) b.addEventListener("click", () => { S.chatTarget = u.session; update(); $("chat-input").focus(); });
    li.append(b);
    const flags = [];
    if (self && S.transmitting) flags.push(["talk", L.talking]);
    if (u.self_deaf || u.deaf) flags.push(["deaf", L.deaf]);
    else if (u.self_mute || u.mute) flags.push(["muted", L.muted]);
    if (u.suppress) flags.push(["suppressed", L.suppressedShort]);
    if (u.recording) flags.push(["rec", L.rec]);
    if (/web|browser/i.test(u.comment || "")) flags.push(["web", L.onWeb]);
    for (const [cls, label] of flags) li.append(el("span", "flag " + cls, label));
    return li;
  }

  init();
})();
