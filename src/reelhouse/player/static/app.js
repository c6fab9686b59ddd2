// Reelhouse reference web player: plain JavaScript, no build step.
//
// Talks to the API on this origin (/api/v1) with the bearer token kept in localStorage.
// Playback: POST /playback/sessions grants a stream; the signed HLS master playlist (stream_url)
// lists the renditions the plan allows. The browser plays it natively when it can (Safari,
// Chromium); otherwise, or when hls.js is asked for (?engine=hlsjs, or "Player" in the page),
// hls.js plays it through Media Source Extensions with adaptive bitrate, and the page lists the
// renditions to pick from. hls.js is the pinned npm package the server serves at /player/vendor/
// (404 when it is not installed: then only native HLS plays). While a title plays, the playback
// websocket (ws_url) gets a heartbeat every heartbeat_interval_seconds with the real position and
// state; a `terminated` notice or a 4001-4007 close stops the video and says why, and so does a
// playlist or segment refused with 403 (its problem document names the reason); any other drop
// reconnects with the same playback token (the same stream, never a second one).
//
// Catalog text only ever reaches the page through textContent: no innerHTML with data, no eval.
"use strict";

(() => {
  const API = "/api/v1";
  const STORE = "reelhouse.player";
  // Video events that send a heartbeat at once (besides the regular interval).
  const VIDEO_EVENTS = ["play", "playing", "waiting", "pause", "seeked"];
  const HLS_JS_URL = "/player/vendor/hls.min.js";
  const HLS_WORKER_URL = "/player/vendor/hls.worker.js"; // a worker from this origin: no blob: workers
  const HLS_TYPE = "application/vnd.apple.mpegurl";
  // hls.js's forward buffer, in seconds of media: it loads the next segment only while less than
  // maxMaxBufferLength is buffered ahead (its 60 MB maxBufferSize lifts the target above
  // maxBufferLength for any video bitrate below 30 Mb/s). With encrypted media on a CDN this is
  // what keeps playback close to the session: once the session ends, the page plays at most what
  // it buffered (16 s + the segment in flight) and the rest of the key period it holds a key for;
  // the next key is refused, and the page stops and says why.
  const HLS_BUFFER = { maxBufferLength: 12, maxMaxBufferLength: 16 };
  // What plays the HLS stream: "auto" (native when the browser can, else hls.js), "native" or "hlsjs".
  const ENGINES = ["auto", "native", "hlsjs"];
  const $ = (id) => document.getElementById(id);

  // --- state ----------------------------------------------------------------------------------

  const saved = JSON.parse(localStorage.getItem(STORE) || "{}");
  const state = {
    token: saved.token || null,
    refresh: saved.refresh || null,
    user: saved.user || null,
    deviceId: saved.deviceId || `web-${crypto.randomUUID()}`,
    subscription: null,
    plans: [],
    titles: new Map(), // content id -> title, for the devices list
    catalogOffset: 0,
    view: "home",
    engine: ENGINES.includes(saved.engine) ? saved.engine : "auto",
  };
  // ?engine=hlsjs (or native, auto) in the page's URL picks it as "Player" in the page does (kept).
  const askedEngine = new URLSearchParams(location.search).get("engine");
  if (ENGINES.includes(askedEngine)) state.engine = askedEngine;
  let playback = null; // the current Playback, if any

  function persist() {
    localStorage.setItem(
      STORE,
      JSON.stringify({
        token: state.token,
        refresh: state.refresh,
        user: state.user,
        deviceId: state.deviceId,
        engine: state.engine,
      }),
    );
  }
  persist();

  // --- helpers --------------------------------------------------------------------------------

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function clock(seconds) {
    const s = Math.max(0, Math.floor(seconds || 0));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const rest = String(s % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
  }

  function runtime(seconds) {
    if (seconds < 60) return `${seconds} s`;
    const minutes = Math.round(seconds / 60);
    return minutes >= 60 ? `${Math.floor(minutes / 60)} h ${minutes % 60} min` : `${minutes} min`;
  }

  function money(minor, currency) {
    if (!minor) return "Free";
    try {
      return new Intl.NumberFormat(undefined, { style: "currency", currency: currency || "USD" }).format(minor / 100);
    } catch {
      return `${(minor / 100).toFixed(2)} ${currency}`;
    }
  }

  let noticeTimer = null;
  function notify(message, ok = false) {
    const box = $("notice");
    box.textContent = message;
    box.classList.toggle("ok", ok);
    box.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { box.hidden = true; }, 8000);
  }

  class ApiError extends Error {
    constructor(status, problem) {
      super(problem.detail || problem.title || `HTTP ${status}`);
      this.status = status;
      this.code = problem.code || "";
      this.problem = problem;
    }
  }

  async function api(method, path, body, { auth = true, retry = true, headers = {} } = {}) {
    const init = { method, headers: { Accept: "application/json", ...headers } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    if (auth && state.token) init.headers.Authorization = `Bearer ${state.token}`;
    const response = await fetch(API + path, init);
    if (response.status === 401 && auth && state.token && retry && (await refreshTokens())) {
      return api(method, path, body, { auth, retry: false, headers });
    }
    if (response.status === 401 && auth && state.token) {
      signedOutLocally("Your sign-in has ended. Please sign in again.");
    }
    if (response.status === 204) return null;
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  let refreshing = null;
  function refreshTokens() {
    if (!state.refresh) return Promise.resolve(false);
    refreshing ??= (async () => {
      try {
        const response = await fetch(`${API}/auth/refresh`, {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify({ refresh: state.refresh }),
        });
        if (!response.ok) return false;
        const data = await response.json();
        state.token = data.token;
        state.refresh = data.refresh;
        state.user = data.user;
        persist();
        return true;
      } catch {
        return false;
      } finally {
        setTimeout(() => { refreshing = null; }, 0);
      }
    })();
    return refreshing;
  }

  // --- posters --------------------------------------------------------------------------------

  function hue(text) {
    let h = 0;
    for (const ch of text) h = (h * 31 + ch.codePointAt(0)) % 360;
    return h;
  }

  function placeholder(poster, title) {
    const h = hue(title);
    poster.style.backgroundImage =
      `linear-gradient(160deg, hsl(${h} 55% 38%), hsl(${(h + 50) % 360} 60% 16%) 70%, hsl(${(h + 90) % 360} 50% 9%))`;
  }

  // The demo catalog's images live on example.com, which serves none: draw a poster instead.
  function usableImage(url) {
    try {
      const parsed = new URL(url);
      const host = parsed.hostname;
      return parsed.protocol === "https:" && host !== "example.com" && !host.endsWith(".example.com");
    } catch {
      return false;
    }
  }

  function card(content, { progress = null, locked = false, onPlay } = {}) {
    const node = $("card-template").content.firstElementChild.cloneNode(true);
    const poster = node.querySelector(".poster");
    node.dataset.contentId = content.id;
    node.querySelector(".poster-title").textContent = content.title;
    poster.setAttribute("aria-label", `Play ${content.title}`);
    placeholder(poster, content.title);
    if (content.thumbnail_url && usableImage(content.thumbnail_url)) {
      const img = document.createElement("img");
      img.alt = "";
      img.loading = "lazy";
      img.addEventListener("error", () => img.remove());
      img.src = content.thumbnail_url;
      poster.prepend(img);
    }
    node.querySelector(".card-title").textContent = content.title;
    const genres = (content.genres || []).map((g) => g.name).slice(0, 2).join(", ");
    const meta = [content.release_year, runtime(content.duration_seconds), content.access_level, genres];
    node.querySelector(".card-meta").textContent = meta.filter(Boolean).join(" · ");
    if (progress !== null) {
      const bar = node.querySelector(".progress");
      bar.hidden = false;
      bar.firstElementChild.style.width = `${Math.min(100, Math.max(2, progress))}%`;
    }
    node.classList.toggle("locked", locked);
    poster.addEventListener("click", () => (onPlay ? onPlay() : play(content)));
    state.titles.set(content.id, content.title);
    return node;
  }

  // --- views ----------------------------------------------------------------------------------

  function show(view) {
    state.view = view;
    for (const name of ["home", "plans", "devices"]) $(`view-${name}`).hidden = name !== view;
    for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.view === view);
    if (view === "home") loadHome();
    if (view === "plans") loadPlans();
    if (view === "devices") loadDevices();
  }

  function renderAccount() {
    const signedIn = Boolean(state.token && state.user);
    $("auth").hidden = signedIn;
    $("nav").hidden = !signedIn;
    $("sign-out").hidden = !signedIn;
    $("account-name").textContent = signedIn ? state.user.name || state.user.email : "";
    const plan = state.subscription && state.subscription.plan;
    $("account-plan").textContent = signedIn ? (plan ? plan.name : "No plan") : "";
    if (!signedIn) {
      for (const name of ["home", "plans", "devices"]) $(`view-${name}`).hidden = true;
    }
  }

  async function loadSubscription() {
    // The newest subscription is the current one when any is (one at a time); reading the history
    // answers 200 for a new account too, where /subscriptions/active would log a 404 in the console.
    const history = await api("GET", "/subscriptions/history?limit=1");
    state.subscription = history.subscriptions.find((s) => s.is_active) || null;
    renderAccount();
  }

  function playbackRefusal(error) {
    if (error.status !== 403) return `Could not start playback: ${error.message}`;
    // Without a plan there is no "your plan" to speak of.
    if (error.code === "plan_required" && !state.subscription) {
      return "This title needs a subscription. Choose a plan under Plans to watch it.";
    }
    return `${error.message} See Plans for a plan that includes it.`;
  }

  function screensAllowed() {
    const plan = state.subscription && state.subscription.plan;
    return plan ? plan.max_devices_allowed : 1;
  }

  async function loadHome() {
    await Promise.all([loadContinue(), loadRecommendations(), loadGenres()]);
    if (!$("catalog-list").childElementCount) await loadCatalog(true);
  }

  async function loadContinue() {
    const data = await api("GET", "/watch-history/continue-watching").catch(() => null);
    const items = (data && data.continue_watching) || [];
    const list = $("continue-list");
    list.replaceChildren(
      ...items.map((item) => card(item.content, { progress: item.progress_percent, locked: item.accessible === false })),
    );
    $("continue-row").hidden = items.length === 0;
  }

  async function loadRecommendations() {
    const data = await api("GET", "/content/recommendations?limit=12").catch(() => null);
    const items = (data && data.recommendations) || [];
    $("recommend-list").replaceChildren(...items.map((c) => card(c, { locked: c.accessible === false })));
    $("recommend-row").hidden = items.length === 0;
  }

  let genresLoaded = false;
  async function loadGenres() {
    if (genresLoaded) return;
    const data = await api("GET", "/genres", undefined, { auth: false }).catch(() => null);
    if (!data) return;
    genresLoaded = true;
    const select = $("search-genre");
    for (const genre of data.genres) {
      const option = el("option", genre.name);
      option.value = genre.slug;
      select.append(option);
    }
  }

  const PAGE = 24;
  async function loadCatalog(fresh) {
    if (fresh) state.catalogOffset = 0;
    const params = new URLSearchParams({ limit: String(PAGE), offset: String(state.catalogOffset) });
    const q = $("search-q").value.trim();
    if (q) params.set("q", q);
    if ($("search-genre").value) params.set("genre", $("search-genre").value);
    if ($("search-level").value) params.set("access_level", $("search-level").value);
    params.set("sort", $("search-sort").value);
    let data;
    try {
      data = await api("GET", `/content?${params}`);
    } catch (error) {
      notify(`Could not load the catalog: ${error.message}`);
      return;
    }
    const cards = data.contents.map((c) => card(c));
    if (fresh) $("catalog-list").replaceChildren(...cards);
    else $("catalog-list").append(...cards);
    state.catalogOffset += data.contents.length;
    $("catalog-count").textContent = q ? `${data.total} title${data.total === 1 ? "" : "s"} match${data.total === 1 ? "es" : ""} “${q}”` : `${data.total} titles`;
    $("catalog-more").hidden = state.catalogOffset >= data.total;
  }

  async function loadPlans() {
    const [plans] = await Promise.all([api("GET", "/plans", undefined, { auth: false }), loadSubscription()]);
    state.plans = plans.plans;
    const current = state.subscription;
    $("subscription-summary").textContent = current
      ? `You are on ${current.plan.name} until ${new Date(current.end_date).toLocaleDateString()}` +
        `${current.auto_renew ? " (renews)" : " (does not renew)"}.`
      : "You have no subscription: free titles on one screen in 480p. Pick a plan to watch more.";
    const list = $("plan-list");
    list.replaceChildren(
      ...state.plans.map((plan) => {
        const box = el("article", null, "plan");
        box.dataset.planId = plan.id;
        box.dataset.planName = plan.name;
        const isCurrent = Boolean(current && current.plan_id === plan.id);
        box.classList.toggle("current", isCurrent);
        const screens = plan.max_devices_allowed;
        const facts = el("ul");
        facts.append(
          el("li", `${plan.access_level} titles`),
          el("li", `Up to ${plan.resolution}`),
          el("li", `${screens} screen${screens === 1 ? "" : "s"} at once`),
          el("li", `${plan.validity_days} days`),
        );
        const button = el("button", isCurrent ? "Current plan" : current ? "Switch to this plan" : "Subscribe");
        button.type = "button";
        button.className = isCurrent ? "" : "primary";
        button.disabled = isCurrent;
        button.addEventListener("click", () => subscribe(plan, button));
        box.append(el("h3", plan.name), el("div", money(plan.price, plan.currency), "price"));
        if (plan.description) box.append(el("p", plan.description, "muted"));
        box.append(facts, button);
        return box;
      }),
    );
  }

  async function subscribe(plan, button) {
    button.disabled = true;
    try {
      if (state.subscription) {
        await api("POST", `/subscriptions/${state.subscription.id}/change-plan`, { plan_id: plan.id });
      } else {
        await api("POST", "/subscriptions", { plan_id: plan.id }, { headers: { "Idempotency-Key": crypto.randomUUID() } });
      }
      notify(`You are subscribed to ${plan.name}.`, true);
    } catch (error) {
      notify(`Could not subscribe: ${error.message}`);
    }
    await loadPlans();
  }

  let devicesTimer = null;
  async function loadDevices() {
    clearTimeout(devicesTimer);
    let data;
    try {
      data = await api("GET", "/playback/sessions");
    } catch (error) {
      notify(`Could not list your streams: ${error.message}`);
      return;
    }
    const rows = data.sessions.map((s) => {
      const row = el("tr");
      row.dataset.sessionId = s.session_id;
      const device = el("td", s.device_name || s.device_id);
      if (s.device_id === state.deviceId) device.append(" ", el("span", "this browser", "badge"));
      const stop = el("button", "Stop");
      stop.type = "button";
      stop.addEventListener("click", async () => {
        stop.disabled = true;
        try {
          await api("DELETE", `/playback/sessions/${encodeURIComponent(s.session_id)}`);
          notify(`Stopped playback on ${s.device_name || s.device_id}.`, true);
        } catch (error) {
          notify(`Could not stop it: ${error.message}`);
        }
        loadDevices();
      });
      const action = el("td");
      action.append(stop);
      row.append(
        device,
        el("td", state.titles.get(s.content_id) || "…"),
        el("td", s.state),
        el("td", clock(s.position_seconds)),
        el("td", new Date(s.started_at).toLocaleTimeString()),
        action,
      );
      if (!state.titles.has(s.content_id)) {
        api("GET", `/content/${s.content_id}`, undefined, { auth: false })
          .then((c) => {
            state.titles.set(c.id, c.title);
            row.children[1].textContent = c.title;
          })
          .catch(() => { row.children[1].textContent = "(unavailable)"; });
      }
      return row;
    });
    $("device-list").replaceChildren(...rows);
    $("device-empty").hidden = rows.length > 0;
    if (state.view === "devices" && state.token) devicesTimer = setTimeout(loadDevices, 5000);
  }

  // --- playback -------------------------------------------------------------------------------

  const REASONS = {
    4001: "stream_limit",
    4002: "admin",
    4003: "subscription_ended",
    4004: "signed_out",
    4005: "expired",
    4006: "stopped",
    4007: "replaced",
  };

  function explain(reason) {
    const screens = screensAllowed();
    switch (reason) {
      case "stream_limit":
        return `Your plan allows ${screens} screen${screens === 1 ? "" : "s"} at once. ` +
          "Playback stopped because another device started watching.";
      case "signed_out":
        return "Signed out: this account was signed out on every device (or disabled), so playback stopped. " +
          "Sign in again to keep watching.";
      case "subscription_ended":
        return "Subscription ended: your plan no longer includes this title, so playback stopped. " +
          "See Plans to keep watching.";
      case "admin":
        return "An administrator ended this stream.";
      case "expired":
        return "Playback stopped because this player lost contact with the service for too long. Press play to start again.";
      case "replaced":
        return "This browser started another title, so this one stopped.";
      case "stopped":
        return "Playback was stopped from another device (Devices list).";
      case "invalid_token":
        return "This playback session is no longer valid. Press play to start again.";
      case "resolution_not_allowed":
        return "Your plan no longer includes this quality, and nothing lower was left to play.";
      case "stream_ended":
        return "This stream has ended. Press play to start again.";
      default:
        return "Playback stopped.";
    }
  }

  // The signed master playlist lists the renditions the plan allows (lowest first), each as
  // `<rendition>/index.m3u8?<signed query>`. The video element (natively) or hls.js plays the
  // master playlist itself, with adaptive bitrate; reading it first tells a refusal (403 with its
  // reason) apart and names the best rendition the player may switch up to.
  async function bestRendition(streamUrl) {
    const response = await fetch(streamUrl, { cache: "no-store" });
    if (!response.ok) {
      const problem = await response.json().catch(() => ({}));
      throw new ApiError(response.status, problem);
    }
    const lines = (await response.text()).split(/\r?\n/);
    let best = null;
    let height = 0;
    for (let i = 0; i < lines.length; i += 1) {
      const match = /^#EXT-X-STREAM-INF:.*RESOLUTION=(\d+)x(\d+)/.exec(lines[i]);
      const uri = lines[i + 1];
      if (match && uri && !uri.startsWith("#")) {
        const h = Number(match[2]);
        if (h >= height) {
          height = h;
          best = uri;
        }
      }
    }
    if (!best) throw new ApiError(404, { detail: "This title has nothing to play at your plan's resolution." });
    const parts = new URL(best, streamUrl).pathname.split("/");
    return { url: streamUrl, name: parts[parts.length - 2] || "" };
  }

  // --- what plays the stream: native HLS or hls.js ------------------------------------------------

  let hlsJsLoading = null;
  // hls.js from this server (a pinned npm package); null when it is not installed (404) or unusable.
  function loadHlsJs() {
    if (window.Hls) return Promise.resolve(window.Hls);
    hlsJsLoading ??= new Promise((resolve) => {
      const script = document.createElement("script");
      script.src = HLS_JS_URL;
      script.addEventListener("load", () => resolve(window.Hls || null));
      script.addEventListener("error", () => {
        script.remove();
        hlsJsLoading = null; // ask again on the next play
        resolve(null);
      });
      document.head.append(script);
    });
    return hlsJsLoading;
  }

  // "native", "hls.js", or null when this browser cannot play HLS at all here.
  async function chooseEngine(video) {
    const native = video.canPlayType(HLS_TYPE) !== "";
    if (state.engine !== "hlsjs" && native) return "native";
    const Hls = await loadHlsJs();
    if (Hls && Hls.isSupported()) return "hls.js";
    if (native) {
      notify("hls.js is not available here, so the browser plays the stream itself.");
      return "native";
    }
    return null;
  }

  function renditionName(level, streamUrl) {
    // Rendition playlists are <rendition>/index.m3u8: the folder is the server's name (480p, 4k).
    try {
      const parts = new URL(level.uri || level.url, streamUrl).pathname.split("/");
      if (parts.length > 2 && parts[parts.length - 2]) return parts[parts.length - 2];
    } catch {
      // fall through to the height
    }
    return level.height ? `${level.height}p` : "?";
  }

  function megabits(bitsPerSecond) {
    return `${(bitsPerSecond / 1e6).toFixed(bitsPerSecond < 1e7 ? 1 : 0)} Mb/s`;
  }

  class Playback {
    constructor(content, grant) {
      this.content = content;
      this.grant = grant;
      this.video = $("video");
      this.socket = null;
      this.timer = null;
      this.reconnectTimer = null;
      this.attempts = 0;
      this.interval = Math.max(1, grant.heartbeat_interval_seconds || 15);
      this.hls = null; // the hls.js player, when hls.js plays the stream
      this.mediaRecoveries = 0;
      this.over = false; // the stream has ended, for whatever reason
      this.onVideoEvent = () => this.heartbeat();
      this.onEnded = () => this.stop("Finished. Pick another title, or play it again.");
      this.onOnline = () => this.reconnectNow();
    }

    async begin(startAt) {
      const video = this.video;
      // Tell the server at once when playback really starts, stalls, pauses or jumps, so Devices
      // shows "playing 0:04" rather than the "buffering 0:00" of the first heartbeat.
      for (const type of VIDEO_EVENTS) video.addEventListener(type, this.onVideoEvent);
      video.addEventListener("ended", this.onEnded);
      window.addEventListener("online", this.onOnline);
      if (this.grant.engine === "hls.js") {
        await this.attachHlsJs(startAt);
        if (this.over) return;
      } else {
        await this.attachNative(startAt);
      }
      this.connect();
      try {
        await video.play();
      } catch {
        if (!this.over) status("Press play to start.");
      }
    }

    async attachNative(startAt) {
      const video = this.video;
      video.src = this.grant.rendition.url;
      if (startAt > 0) {
        await new Promise((resolve) => {
          if (video.readyState >= 1) resolve();
          else video.addEventListener("loadedmetadata", resolve, { once: true });
        });
        video.currentTime = Math.min(startAt, Math.max(0, (video.duration || startAt) - 0.5));
      }
    }

    // hls.js with adaptive bitrate (its default, "Auto"); resolves once the master playlist is read.
    attachHlsJs(startAt) {
      const Hls = window.Hls;
      const hls = new Hls({ ...HLS_BUFFER, workerPath: HLS_WORKER_URL, startPosition: startAt > 0 ? startAt : -1 });
      this.hls = hls;
      const ready = new Promise((resolve) => {
        hls.once(Hls.Events.MANIFEST_PARSED, resolve);
        this.onFatal = resolve;
      });
      hls.on(Hls.Events.MANIFEST_PARSED, () => this.showRenditions());
      hls.on(Hls.Events.LEVEL_SWITCHED, () => this.showRenditions());
      hls.on(Hls.Events.ERROR, (_, data) => this.onHlsError(data));
      hls.loadSource(this.grant.rendition.url);
      hls.attachMedia(this.video);
      return ready;
    }

    // The renditions hls.js may switch between, the one playing, and the user's pick (or Auto).
    showRenditions() {
      const hls = this.hls;
      if (!hls || this.over) return;
      const url = this.grant.rendition.url;
      const playing = hls.levels[hls.currentLevel];
      const playingName = playing ? renditionName(playing, url) : "";
      $("player-quality").textContent = playingName;
      const auto = el("option", playingName ? `Auto (${playingName})` : "Auto");
      auto.value = "-1";
      const options = hls.levels.map((level, index) => {
        const size = level.width && level.height ? `${level.width}x${level.height}` : "";
        const text = [renditionName(level, url), size, megabits(level.bitrate)].filter(Boolean).join(" · ");
        const option = el("option", index === hls.currentLevel ? `${text} (playing)` : text);
        option.value = String(index);
        return option;
      });
      const select = $("player-rendition");
      select.replaceChildren(auto, ...options);
      select.value = hls.autoLevelEnabled ? "-1" : String(hls.manualLevel);
      $("player-rendition-label").hidden = false;
    }

    // A pick from the quality list: that rendition from now on (the buffer is dropped), or Auto.
    pickRendition(index) {
      if (!this.hls || this.over) return;
      if (index < 0) {
        this.hls.loadLevel = -1; // Auto: adaptive bitrate again from the next segment, no rebuffering
      } else {
        this.hls.currentLevel = index;
      }
      this.showRenditions();
    }

    async onHlsError(data) {
      if (this.over) return;
      const Hls = window.Hls;
      const status = data.response && data.response.code;
      // A refused key names its own URL (the API's); the segment it was for may be on a CDN.
      const keyUrl = data.details === Hls.ErrorDetails.KEY_LOAD_ERROR && data.response && data.response.url;
      const url = keyUrl || (data.context && data.context.url) || (data.frag && data.frag.url) || data.url;
      if (status === 403 && url) {
        // Refused: the problem document names the reason, the same one the websocket gives. A
        // session that ended (another device, stopped, signed out, ...) stops playback here at
        // once, in case the socket's notice never arrives; hls.js skips a rendition above a
        // lowered plan cap (resolution_not_allowed) by itself, unless nothing else is left.
        const reason = await this.whyRefused(url);
        if (this.over) return;
        if (reason && (reason !== "resolution_not_allowed" || data.fatal)) {
          this.end(reason);
          this.settle();
          return;
        }
      }
      if (!data.fatal) {
        console.warn("hls.js:", data.details);
        return;
      }
      console.error("hls.js fatal error:", data.type, data.details, status || "", url || "");
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR && this.mediaRecoveries < 2) {
        this.mediaRecoveries += 1;
        this.hls.recoverMediaError();
        return;
      }
      this.stop(`Playback failed (${data.details}). Press play to try again.`); // frees the screen too
      this.settle();
    }

    // The `code` of a refused playlist or segment's problem document; null when it answers now.
    async whyRefused(url) {
      try {
        const response = await fetch(url, { cache: "no-store" });
        if (response.ok) return null;
        const problem = await response.json().catch(() => ({}));
        return problem.code || "stream_ended";
      } catch {
        return null;
      }
    }

    // hls.js gave up before the master playlist was read: begin() stops waiting.
    settle() {
      if (this.onFatal) this.onFatal();
    }

    position() {
      return Math.round((this.video.currentTime || 0) * 10) / 10;
    }

    playerState() {
      const video = this.video;
      if (video.paused || video.ended) return "paused";
      if (video.readyState < HTMLMediaElement.HAVE_FUTURE_DATA || video.seeking) return "buffering";
      return "playing";
    }

    send(message) {
      if (this.socket && this.socket.readyState === WebSocket.OPEN) {
        this.socket.send(JSON.stringify(message));
        return true;
      }
      return false;
    }

    heartbeat() {
      if (this.over) return;
      if (this.send({ type: "heartbeat", position_seconds: this.position(), state: this.playerState() })) {
        this.lastBeat = Date.now();
      }
    }

    schedule() {
      clearInterval(this.timer);
      this.timer = setInterval(() => this.heartbeat(), this.interval * 1000);
    }

    connect() {
      if (this.over) return;
      const socket = new WebSocket(this.grant.ws_url); // the same playback token every time
      this.socket = socket;
      this.terminated = null;
      socket.addEventListener("open", () => {
        this.attempts = 0;
        status("Watching");
        this.heartbeat();
        this.schedule();
      });
      socket.addEventListener("message", (event) => {
        let message;
        try {
          message = JSON.parse(event.data);
        } catch {
          return;
        }
        if (message.type === "ack" && message.next_heartbeat_seconds) {
          if (message.next_heartbeat_seconds !== this.interval) {
            this.interval = message.next_heartbeat_seconds;
            this.schedule();
          }
        } else if (message.type === "terminated") {
          this.terminated = message.reason;
        } else if (message.type === "error" && message.code === "invalid_token") {
          this.terminated = "invalid_token";
        } else if (message.type === "error") {
          console.warn("playback socket:", message.code, message.detail);
        }
      });
      socket.addEventListener("close", (event) => {
        if (socket !== this.socket) return;
        clearInterval(this.timer);
        if (this.over) return;
        const reason = this.terminated || REASONS[event.code] || (event.code === 4401 ? "invalid_token" : null);
        if (reason) {
          this.end(reason);
        } else {
          this.reconnectLater(); // a network drop or a server restart (1012): same token, same stream
        }
      });
    }

    reconnectLater() {
      const delay = Math.min(10000, 500 * 2 ** this.attempts);
      this.attempts += 1;
      status(`Connection lost; reconnecting${this.attempts > 1 ? ` (attempt ${this.attempts})` : ""}…`);
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = setTimeout(() => this.connect(), delay);
    }

    reconnectNow() {
      if (this.over || (this.socket && this.socket.readyState <= WebSocket.OPEN)) return;
      clearTimeout(this.reconnectTimer);
      this.connect();
    }

    teardown() {
      this.over = true;
      if (this.hls) {
        this.hls.destroy();
        this.hls = null;
      }
      $("player-rendition-label").hidden = true;
      clearInterval(this.timer);
      clearTimeout(this.reconnectTimer);
      window.removeEventListener("online", this.onOnline);
      const video = this.video;
      for (const type of VIDEO_EVENTS) video.removeEventListener(type, this.onVideoEvent);
      video.removeEventListener("ended", this.onEnded);
      video.pause();
      video.removeAttribute("src");
      video.load();
    }

    // Ended elsewhere: stop the picture and say why.
    end(reason) {
      if (this.over) return;
      this.teardown();
      if (this.socket) this.socket.close();
      status("Stopped");
      message(explain(reason));
      if (reason === "signed_out") signedOutLocally(null);
      refreshSideViews();
    }

    // Stopped here (Stop button, another title, leaving the page): tell the server, then close.
    stop(text) {
      if (this.over) return;
      const position = this.position();
      const told = this.send({ type: "stop", position_seconds: position });
      if (!told && state.token) {
        api("DELETE", `/playback/sessions/${encodeURIComponent(this.grant.session_id)}`).catch(() => {});
      }
      this.teardown();
      const socket = this.socket;
      if (socket) setTimeout(() => socket.close(), 2000); // the server closes it first, with 4006
      if (text) {
        status("Stopped");
        message(text);
      }
      refreshSideViews();
    }

    // The page is going away: best effort, without waiting.
    leave() {
      if (this.over) return;
      const told = this.send({ type: "stop", position_seconds: this.position() });
      if (!told && state.token) {
        fetch(`${API}/playback/sessions/${encodeURIComponent(this.grant.session_id)}`, {
          method: "DELETE",
          headers: { Authorization: `Bearer ${state.token}` },
          keepalive: true,
        }).catch(() => {});
      }
      this.over = true;
    }
  }

  function status(text) {
    $("player-status").textContent = text;
  }

  function message(text) {
    $("resume-prompt").hidden = true;
    $("limit-prompt").hidden = true;
    $("player-message-text").textContent = text;
    $("player-message").hidden = !text;
  }

  function refreshSideViews() {
    if (!state.token) return;
    if (state.view === "devices") loadDevices();
    if (state.view === "home") { loadContinue(); loadRecommendations(); }
  }

  function askResume(seconds) {
    return new Promise((resolve) => {
      $("resume-text").textContent = `You stopped at ${clock(seconds)}. Resume from there?`;
      $("resume-prompt").hidden = false;
      const answer = (value) => () => {
        $("resume-prompt").hidden = true;
        $("resume-yes").onclick = null;
        $("resume-no").onclick = null;
        resolve(value);
      };
      $("resume-yes").onclick = answer(seconds);
      $("resume-no").onclick = answer(0);
    });
  }

  function askWhichToReplace(problem) {
    return new Promise((resolve) => {
      const sessions = problem.live_sessions || [];
      $("limit-sessions").replaceChildren(
        ...sessions.map((s) => {
          const item = el("li");
          const button = el("button", `Stop “${s.device_name || s.device_id}” and watch here`);
          button.type = "button";
          button.addEventListener("click", () => { $("limit-prompt").hidden = true; resolve(s.session_id); });
          item.append(button);
          return item;
        }),
      );
      $("limit-prompt").hidden = false;
      $("limit-cancel").onclick = () => { $("limit-prompt").hidden = true; resolve(null); };
    });
  }

  function deviceName() {
    const ua = navigator.userAgent;
    const browser = /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox" : /Chrom/.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : "Browser";
    const os = /Windows/.test(ua) ? "Windows" : /Mac OS/.test(ua) ? "macOS" : /Android/.test(ua) ? "Android" : /Linux/.test(ua) ? "Linux" : "";
    return `Web player (${browser}${os ? ` on ${os}` : ""})`;
  }

  async function play(content) {
    if (!state.token) {
      notify("Sign in to watch.");
      return;
    }
    if (playback) playback.stop(null);
    playback = null;
    $("player").hidden = false;
    $("player-title").textContent = content.title;
    $("player-quality").textContent = "";
    $("player-engine").textContent = "";
    $("player-rendition-label").hidden = true;
    status("Starting…");
    message("");
    window.scrollTo({ top: 0, behavior: "instant" });

    // Before a screen is taken: can this browser play HLS, natively or with hls.js?
    const engine = await chooseEngine($("video"));
    if (!engine) {
      status("Not started");
      message("This browser cannot play HLS: it has no native HLS, and hls.js is not available on this server.");
      return;
    }
    $("player-engine").textContent = engine === "hls.js" ? `hls.js ${window.Hls.version}` : "native HLS";

    const body = { content_id: content.id, device_id: state.deviceId, device_name: deviceName() };
    let grant;
    for (;;) {
      try {
        grant = await api("POST", "/playback/sessions", body);
        break;
      } catch (error) {
        if (error.code === "stream_limit_reached") {
          status("");
          const replace = await askWhichToReplace(error.problem);
          if (!replace) { status("Not started"); return; }
          body.replace_session_id = replace;
          continue;
        }
        status("Not started");
        message(playbackRefusal(error));
        return;
      }
    }
    // Without PUBLIC_URL the server answers relative URLs: resolve them against this page.
    grant.stream_url = new URL(grant.stream_url, location.href).toString();
    grant.ws_url = new URL(grant.ws_url, location.href.replace(/^http/, "ws")).toString();
    try {
      grant.rendition = await bestRendition(grant.stream_url);
    } catch (error) {
      status("Not started");
      message(`Could not start playback: ${error.message}`);
      api("DELETE", `/playback/sessions/${encodeURIComponent(grant.session_id)}`).catch(() => {});
      return;
    }
    grant.engine = engine;
    if (engine === "native") $("player-quality").textContent = grant.rendition.name;
    if (grant.evicted && grant.evicted.length) {
      notify(`To make room, playback stopped on ${grant.evicted.map((e) => e.device_name || e.device_id).join(", ")}.`);
    }
    const current = new Playback(content, grant);
    playback = current;
    let startAt = 0;
    if (grant.resume_position_seconds > 0) {
      status("");
      startAt = await askResume(grant.resume_position_seconds);
      if (playback !== current) return;
    }
    await current.begin(startAt);
  }

  // --- sign in / out --------------------------------------------------------------------------

  function formData(form) {
    return Object.fromEntries(new FormData(form).entries());
  }

  async function signedIn(data) {
    state.token = data.token;
    state.refresh = data.refresh;
    state.user = data.user;
    persist();
    await start();
  }

  function signedOutLocally(text) {
    if (playback && !playback.over) playback.end("signed_out");
    state.token = null;
    state.refresh = null;
    state.user = null;
    state.subscription = null;
    persist();
    renderAccount();
    if (text) notify(text);
  }

  function bindForms() {
    $("sign-in-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const { email, password } = formData(event.target);
      try {
        const data = await api("POST", "/auth/login", { email, password, device_name: deviceName() }, { auth: false });
        await signedIn(data);
      } catch (error) {
        notify(`Could not sign in: ${error.message}`);
      }
    });
    $("sign-up-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const { name, email, password } = formData(event.target);
      try {
        const data = await api("POST", "/auth/register", { name, email, password }, { auth: false });
        await signedIn(data);
        notify(`Welcome, ${data.user.name}! Pick a plan to watch more.`, true);
      } catch (error) {
        const fields = (error.problem && error.problem.errors) || [];
        const detail = fields.length ? fields.map((f) => f.message || f.key).join("; ") : error.message;
        notify(`Could not sign up: ${detail}`);
      }
    });
    $("sign-out").addEventListener("click", async () => {
      if (playback) playback.stop(null);
      $("player").hidden = true;
      await api("POST", "/auth/logout", undefined, { retry: false }).catch(() => {});
      signedOutLocally("You are signed out.");
    });
    for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => show(tab.dataset.view));
    $("search-form").addEventListener("submit", (event) => { event.preventDefault(); loadCatalog(true); });
    for (const id of ["search-genre", "search-level", "search-sort"]) $(id).addEventListener("change", () => loadCatalog(true));
    $("catalog-more").addEventListener("click", () => loadCatalog(false));
    $("engine-choice").value = state.engine;
    $("engine-choice").addEventListener("change", (event) => {
      state.engine = event.target.value;
      persist();
      if (playback && !playback.over) notify("The new player setting applies from the next title you play.", true);
    });
    $("player-rendition").addEventListener("change", (event) => {
      if (playback) playback.pickRendition(Number(event.target.value));
    });
    $("player-stop").addEventListener("click", () => {
      if (playback && !playback.over) playback.stop(null);
      playback = null;
      $("player").hidden = true;
    });
    $("player-message-close").addEventListener("click", () => {
      message("");
      if (!playback || playback.over) $("player").hidden = true;
    });
    window.addEventListener("pagehide", () => { if (playback) playback.leave(); });
  }

  async function start() {
    renderAccount();
    if (!state.token) return;
    try {
      await loadSubscription();
    } catch (error) {
      notify(`Could not load your account: ${error.message}`);
    }
    if (state.token) show(state.view);
  }

  bindForms();
  start();
})();
