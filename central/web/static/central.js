/* Central dashboard: first-run setup, login, the fleet, pairing, admins, API tokens, live view, grid of live views,
   people (unknown faces, enrolment, merge, erasure, sightings timeline).
   Plain JS, no build step. Every /v1 call uses the HttpOnly session cookie; state-changing calls send
   the session's CSRF token (read from GET /v1/auth/me, kept in memory) as X-CSRF-Token. */
"use strict";
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var page = document.body.getAttribute("data-page");
  var csrf = "";
  var skew = 0; /* server clock minus this browser's clock, ms (from the Date header) */
  var REFRESH_MS = 5000;
  var STATES = { online: "online", offline: "offline", disabled: "disabled", awaiting_camera: "awaiting camera" };

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text != null) e.textContent = text;
    return e;
  }

  /* fetch JSON: resolves {ok, status, data}; a network failure resolves with status 0.
     401 on a dashboard page means the session ended: back to the login page. */
  function api(method, path, body, opts) {
    opts = opts || {};
    var headers = { Accept: "application/json" };
    if (method !== "GET" && method !== "HEAD" && csrf) headers["X-CSRF-Token"] = csrf;
    for (var h in opts.headers || {}) headers[h] = opts.headers[h];
    var init = { method: method, credentials: "same-origin", cache: "no-store", headers: headers };
    if (body instanceof URLSearchParams || body instanceof FormData) init.body = body; /* the browser sets the type */
    else if (body !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    return fetch(path, init).then(function (r) {
      var date = Date.parse(r.headers.get("Date") || "");
      if (!isNaN(date)) skew = date - Date.now();
      if (r.status === 401 && !opts.noRedirect) {
        location.replace("/login");
        return new Promise(function () {}); /* the page is going away */
      }
      return r.text().then(function (t) {
        var data = null;
        try { data = t ? JSON.parse(t) : null; } catch (e) { data = { detail: t }; }
        return { ok: r.ok, status: r.status, data: data, headers: r.headers };
      });
    }, function (err) {
      return { ok: false, status: 0, data: { detail: "The server did not answer (" + err.message + ")." } };
    });
  }

  /* the API's message for a refused request, verbatim */
  function detail(res) {
    var d = res.data && res.data.detail;
    if (typeof d === "string") return d;
    return d != null ? JSON.stringify(d) : "HTTP " + res.status;
  }

  function say(id, text, kind) {
    var m = $(id);
    if (!m) return;
    m.textContent = text || "";
    m.className = "msg" + (kind ? " " + kind : "");
  }

  function busy(form, on) {
    Array.prototype.forEach.call(form.querySelectorAll("button"), function (b) { b.disabled = on; });
  }

  function num(v, digits) { return typeof v === "number" && isFinite(v) ? v.toFixed(digits) : null; }

  /* ms since the epoch of an ISO time (UTC assumed when it has no zone) or of seconds since the epoch */
  function parseTime(v) {
    if (typeof v === "number") return v * 1000;
    if (!v) return NaN;
    return Date.parse(/(Z|[+-]\d\d:?\d\d)$/i.test(v) ? v : v + "Z");
  }

  function ago(v) {
    var t = parseTime(v);
    if (isNaN(t)) return "never";
    var s = Math.round((Date.now() + skew - t) / 1000);
    if (s < 5) return "just now";
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    if (s < 86400) return Math.floor(s / 3600) + " h ago";
    return Math.floor(s / 86400) + " d ago";
  }

  function local(v) {
    var t = parseTime(v);
    return isNaN(t) ? "" : new Date(t).toLocaleString();
  }

  function stateLabel(state) { return STATES[state] || String(state || "unknown").replace(/_/g, " "); }
  function badge(state, text) { return el("span", { "class": "badge state-" + state }, text || stateLabel(state)); }
  function yesNo(v) { return v == null ? "—" : v ? "yes" : "no"; }
  function fps(v) { var n = num(v, 1); return n == null ? "—" : n + " fps"; }
  function celsius(v) { var n = num(v, 1); return n == null ? "—" : n + " °C"; }

  /* Keep one child of `container` per item, in order; a child is rebuilt only when its item changed
     (fields in VOLATILE excepted: `refresh` updates those in place), so focus and clicks survive the
     periodic refresh. */
  var VOLATILE = { last_seen_at: 1, last_seen: 1, status: 1 };
  function signature(item) { return JSON.stringify(item, function (k, v) { return VOLATILE[k] ? undefined : v; }); }
  function sync(container, items, keyOf, build, refresh) {
    var old = {}, focusKey = null, focusAction = null, active = document.activeElement;
    Array.prototype.forEach.call(container.children, function (n) { old[n.getAttribute("data-key")] = n; });
    if (active && active !== container && container.contains(active)) {
      var holder = active;
      while (holder.parentNode !== container) holder = holder.parentNode;
      focusKey = holder.getAttribute("data-key");
      focusAction = active.getAttribute("data-action");
    }
    items.forEach(function (item, i) {
      var key = keyOf(item), sig = signature(item), node = old[key], rebuilt = false;
      if (!node || node._sig !== sig) {
        var fresh = build(item);
        fresh.setAttribute("data-key", key);
        fresh._sig = sig;
        if (node) {
          if (node.classList.contains("fresh")) fresh.classList.add("fresh");
          node.replaceWith(fresh);
        }
        node = fresh;
        rebuilt = true;
      } else if (refresh) {
        refresh(node, item);
      }
      delete old[key];
      if (container.children[i] !== node) container.insertBefore(node, container.children[i] || null);
      if (rebuilt && key === focusKey && focusAction) {
        var target = node.querySelector('[data-action="' + focusAction + '"]');
        if (target) target.focus();
      }
    });
    for (var k in old) old[k].remove();
  }

  function keyOfRow(node, container) {
    while (node && node.parentNode !== container) node = node.parentNode;
    return node ? node.getAttribute("data-key") : null;
  }

  /* ------------------------------------------------------------------ confirm / prompt dialog */
  var askResolve = null;
  function finishAsk(value) {
    var resolve = askResolve;
    askResolve = null;
    if ($("ask").open) $("ask").close();
    if (resolve) resolve(value);
  }
  /* Resolves with the typed value (or "" when there is no input), or null when cancelled.
     o.value: show the text input with this value; o.options ([{value, label}]): show a select instead
     (where the page has one) and resolve with the chosen value. */
  function ask(text, o) {
    o = o || {};
    var dlg = $("ask"), input = $("ask-input"), ok = $("ask-ok"), select = $("ask-select");
    if (askResolve) finishAsk(null);
    $("ask-text").textContent = text;
    ok.textContent = o.ok || "OK";
    ok.className = o.danger ? "danger" : "";
    input.hidden = o.value == null;
    input.required = o.value != null;
    input.value = o.value == null ? "" : o.value;
    if (select) {
      select.hidden = !o.options;
      select.textContent = "";
      (o.options || []).forEach(function (opt) { select.appendChild(el("option", { value: opt.value }, opt.label)); });
    }
    return new Promise(function (resolve) {
      askResolve = resolve;
      dlg.showModal();
      if (!input.hidden) { input.focus(); input.select(); }
      else if (select && !select.hidden) select.focus();
      else ok.focus();
    });
  }
  function initAsk() {
    $("ask-form").addEventListener("submit", function (e) {
      e.preventDefault();
      var input = $("ask-input"), select = $("ask-select");
      if (select && !select.hidden) { if (select.value) finishAsk(select.value); return; }
      if (input.hidden) { finishAsk(""); return; }
      var v = input.value.trim();
      if (v) finishAsk(v);
    });
    $("ask-cancel").addEventListener("click", function () { finishAsk(null); });
    $("ask").addEventListener("close", function () { finishAsk(null); });
  }

  /* ================================================================== login and first start */
  function initLogin() {
    var setupForm = $("setup-form"), loginForm = $("login-form");

    function showLogin(note, username) {
      setupForm.hidden = true;
      loginForm.hidden = false;
      say("login-note", note, "ok");
      if (username) $("login-username").value = username;
      ($("login-username").value ? $("login-password") : $("login-username")).focus();
    }

    setupForm.addEventListener("submit", function (e) {
      e.preventDefault();
      say("setup-error", "");
      var username = $("setup-username").value.trim(), password = $("setup-password").value;
      if (password !== $("setup-confirm").value) { say("setup-error", "The two passwords differ.", "error"); return; }
      busy(setupForm, true);
      api("POST", "/v1/setup", { password: $("setup-bootstrap").value.trim() }, { noRedirect: true }).then(function (res) {
        if (res.status === 409) { showLogin("The first admin already exists: log in."); return null; }
        if (!res.ok) { say("setup-error", detail(res), "error"); return null; }
        return api("POST", "/v1/setup/admin", { username: username, password: password },
          { noRedirect: true, headers: { Authorization: "Bearer " + res.data.setup_token } });
      }).then(function (res) {
        busy(setupForm, false);
        if (!res) return;
        if (res.status === 409) { showLogin("The first admin already exists: log in."); return; }
        if (!res.ok) { say("setup-error", detail(res), "error"); return; }
        setupForm.reset();
        showLogin("Admin “" + res.data.username + "” created. Log in with its password.", res.data.username);
      });
    });

    loginForm.addEventListener("submit", function (e) {
      e.preventDefault();
      say("login-error", "");
      var body = new URLSearchParams();
      body.set("username", $("login-username").value.trim());
      body.set("password", $("login-password").value);
      busy(loginForm, true);
      api("POST", "/v1/auth/session", body, { noRedirect: true }).then(function (res) {
        if (res.ok) {
          csrf = res.data.csrf_token;
          location.replace("/");
          return;
        }
        busy(loginForm, false);
        say("login-error", res.status === 401 ? "Wrong username or password." : detail(res), "error");
        $("login-password").select();
      });
    });
  }

  /* ================================================================== dashboard */
  function initDashboard() {
    var cams = {}, admins = {}, tokens = {}, me = null, freshId = null;
    var loadingCams = false, loadingDisc = false;
    initAsk();

    /* -------------------------------------------------------------- paired cameras */
    function cell(tr, label, cls, content) {
      var td = el("td", { "data-label": label, "class": cls });
      if (typeof content === "string") td.textContent = content; else td.appendChild(content);
      tr.appendChild(td);
      return td;
    }

    function cameraRow(c) {
      var tr = el("tr", { "data-id": c.id });
      var name = el("div");
      name.appendChild(el("strong", { "class": "cam-name" }, c.name));
      name.appendChild(el("span", { "class": "hw", title: "hardware id" }, c.hardware_id));
      cell(tr, "Name", "name", name);
      cell(tr, "State", "state", badge(c.state));
      cell(tr, "Streaming", "streaming", yesNo(c.streaming));
      cell(tr, "Detection", "fps", fps(c.detection_fps));
      cell(tr, "Temperature", "temp", celsius(c.temperature_c));
      cell(tr, "Last seen", "seen", ago(c.last_seen_at)).title = local(c.last_seen_at);
      cell(tr, "Version", "version", c.version || "—");
      var actions = el("div", { "class": "actions" });
      actions.appendChild(el("a", { "class": "button", href: "/cameras/" + encodeURIComponent(c.id) + "/live", "data-action": "live" }, "Live"));
      actions.appendChild(el("button", { type: "button", "data-action": "rename" }, "Rename"));
      actions.appendChild(el("button", { type: "button", "data-action": "toggle" }, c.disabled ? "Enable" : "Disable"));
      var rotate = el("button", { type: "button", "data-action": "rotate" }, c.rotation_pending ? "Rotation pending" : "Rotate secret");
      rotate.disabled = !!c.rotation_pending;
      actions.appendChild(rotate);
      actions.appendChild(el("button", { type: "button", "class": "danger", "data-action": "unpair" }, "Unpair"));
      cell(tr, "Actions", "act", actions);
      if (c.id === freshId) tr.classList.add("fresh");
      return tr;
    }

    function refreshRow(tr, c) {
      var seen = tr.querySelector(".seen");
      seen.textContent = ago(c.last_seen_at);
      seen.title = local(c.last_seen_at);
    }

    /* the camera list is paged, filtered and sorted by the server (GET /v1/cameras) */
    var camPage = { offset: 0, total: 0 }, summary = null;

    function camQuery() {
      var p = new URLSearchParams();
      var q = $("cam-q").value.trim(), st = $("cam-state").value;
      if (q) p.set("q", q);
      if (st) p.set("state", st);
      p.set("sort", $("cam-sort").value);
      p.set("limit", $("cam-per-page").value);
      p.set("offset", String(camPage.offset));
      return p;
    }

    function filtered() { return !!($("cam-q").value.trim() || $("cam-state").value); }

    function renderCameras(list) {
      cams = {};
      list.forEach(function (c) { cams[c.id] = c; });
      sync($("camera-rows"), list, function (c) { return c.id; }, cameraRow, refreshRow);
      var size = Number($("cam-per-page").value), total = camPage.total;
      if (summary) $("camera-count").textContent = summary.total ? "(" + summary.online + " of " + summary.total + " online)" : "";
      var none = summary ? summary.total === 0 : total === 0 && !filtered();
      $("no-cameras").hidden = !none;
      $("no-match").hidden = none || list.length > 0;
      $("cameras").hidden = list.length === 0;
      $("camera-filter").hidden = none;
      $("cam-pager").hidden = total <= size && camPage.offset === 0;
      $("cam-range").textContent = list.length ? (camPage.offset + 1) + "–" + (camPage.offset + list.length) + " of " + total : "0 of " + total;
      $("cam-prev").disabled = camPage.offset === 0;
      $("cam-next").disabled = camPage.offset + list.length >= total;
    }

    function loadCameras() {
      if (loadingCams) return;
      loadingCams = true;
      Promise.all([api("GET", "/v1/cameras?" + camQuery().toString()), api("GET", "/v1/fleet/summary")]).then(function (r) {
        loadingCams = false;
        var res = r[0];
        if (!res.ok) { say("cameras-msg", "Could not load the cameras: " + detail(res), "error"); return; }
        if ($("cameras-msg").classList.contains("error") && /^Could not load/.test($("cameras-msg").textContent)) say("cameras-msg", "");
        if (r[1].ok) summary = r[1].data;
        camPage.total = Number(res.headers.get("X-Total-Count") || res.data.length);
        if (!res.data.length && camPage.offset > 0 && camPage.total > 0) { /* the last page emptied: step back */
          camPage.offset = Math.max(0, Math.floor((camPage.total - 1) / Number($("cam-per-page").value)) * Number($("cam-per-page").value));
          loadCameras();
          return;
        }
        renderCameras(res.data);
      });
    }

    var filterTimer = null;
    function refilter() { camPage.offset = 0; clearTimeout(filterTimer); filterTimer = setTimeout(loadCameras, 200); }
    $("camera-filter").addEventListener("submit", function (e) { e.preventDefault(); refilter(); });
    $("cam-q").addEventListener("input", refilter);
    ["cam-state", "cam-sort", "cam-per-page"].forEach(function (id) { $(id).addEventListener("change", refilter); });
    $("cam-prev").addEventListener("click", function () {
      camPage.offset = Math.max(0, camPage.offset - Number($("cam-per-page").value));
      loadCameras();
    });
    $("cam-next").addEventListener("click", function () {
      camPage.offset += Number($("cam-per-page").value);
      loadCameras();
    });

    function applyCamera(c) {
      if (!cams[c.id]) { loadCameras(); return; }
      var list = Object.keys(cams).map(function (id) { return id === c.id ? c : cams[id]; });
      renderCameras(list);
    }

    function patchCamera(c, body, done) {
      api("PATCH", "/v1/cameras/" + encodeURIComponent(c.id), body).then(function (res) {
        if (!res.ok) { say("cameras-msg", detail(res), "error"); return; }
        applyCamera(res.data);
        say("cameras-msg", done(res.data), "ok");
      });
    }

    $("camera-rows").addEventListener("click", function (e) {
      var b = e.target.closest("button[data-action]");
      if (!b) return;
      var c = cams[keyOfRow(b, $("camera-rows"))];
      if (!c) return;
      var action = b.getAttribute("data-action"), path = "/v1/cameras/" + encodeURIComponent(c.id);
      if (action === "rename") {
        ask("New name for “" + c.name + "”:", { value: c.name, ok: "Rename" }).then(function (name) {
          if (name === null || name === c.name) return;
          patchCamera(c, { name: name }, function (n) { return "Renamed “" + c.name + "” to “" + n.name + "”."; });
        });
      } else if (action === "toggle") {
        patchCamera(c, { disabled: !c.disabled }, function (n) {
          return n.disabled ? "Disabled “" + n.name + "”: its requests are refused until it is enabled again."
            : "Enabled “" + n.name + "”.";
        });
      } else if (action === "rotate") {
        api("POST", path + "/rotate-secret").then(function (res) {
          if (!res.ok) { say("cameras-msg", detail(res), "error"); return; }
          applyCamera(res.data);
          say("cameras-msg", "“" + c.name + "” receives a new secret with its next heartbeat.", "ok");
        });
      } else if (action === "unpair") {
        ask("Unpair “" + c.name + "”? Its credentials stop working at once and it goes back to showing a pairing code.",
          { ok: "Unpair", danger: true }).then(function (v) {
          if (v === null) return;
          api("DELETE", path).then(function (res) {
            if (!res.ok && res.status !== 404) { say("cameras-msg", detail(res), "error"); return; }
            delete cams[c.id];
            loadCameras();
            say("cameras-msg", "Unpaired “" + c.name + "”.", "ok");
            loadDiscovery();
          });
        });
      }
    });

    /* -------------------------------------------------------------- pairing */
    $("pair-form").addEventListener("submit", function (e) {
      e.preventDefault();
      var form = e.target;
      var body = { code: $("pair-code").value.trim(), name: $("pair-name").value.trim() };
      busy(form, true);
      say("pair-msg", "Pairing…");
      api("POST", "/v1/cameras/pair", body).then(function (res) {
        busy(form, false);
        if (!res.ok) { say("pair-msg", detail(res), "error"); $("pair-code").select(); return; }
        form.reset();
        freshId = res.data.id;
        say("pair-msg", "Paired “" + res.data.name + "” (" + stateLabel(res.data.state) +
          "): it comes online once the camera has collected its credentials, within a few seconds.", "ok");
        applyCamera(res.data);
        loadCameras();
        loadDiscovery();
      });
    });

    /* -------------------------------------------------------------- discovery */
    function cameraPage(host, port) {
      if (!/^[A-Za-z0-9.\-]+$/.test(String(host)) || !(port > 0 && port < 65536)) return null;
      return "http://" + host + ":" + port + "/";
    }

    function discoveredItem(d) {
      var li = el("li");
      var what = el("div", { "class": "what" });
      what.appendChild(el("strong", null, d.name));
      what.appendChild(el("span", { "class": "meta" }, [
        d.host + ":" + d.port, "version " + d.version, d.source === "scan" ? "found by scan" : "mDNS",
      ].join(" · ")));
      what.appendChild(el("span", { "class": "meta seen" }, "seen " + ago(d.last_seen)));
      li.appendChild(what);
      var url = cameraPage(d.host, d.port);
      if (url) li.appendChild(el("a", { "class": "button", href: url, target: "_blank", rel: "noopener noreferrer" }, "Camera page"));
      li.appendChild(el("button", { type: "button", "data-action": "pair" }, "Pair…"));
      return li;
    }

    var discovered = {};
    function loadDiscovery() {
      if (loadingDisc) return;
      loadingDisc = true;
      api("GET", "/v1/discovery").then(function (res) {
        loadingDisc = false;
        if (!res.ok) { say("scan-msg", "Could not load the discovered cameras: " + detail(res), "error"); return; }
        var list = res.data.filter(function (d) { return !d.paired; });
        discovered = {};
        list.forEach(function (d) { discovered[d.hardware_id] = d; });
        sync($("discovered"), list, function (d) { return d.hardware_id; }, discoveredItem, function (li, d) {
          li.querySelector(".seen").textContent = "seen " + ago(d.last_seen);
        });
        $("no-discovered").hidden = list.length > 0;
      });
      api("GET", "/v1/pairing/stats").then(function (res) {
        if (!res.ok) return;
        var refused = res.data.refused_last_hour || {}, parts = [], total = 0;
        Object.keys(refused).sort().forEach(function (k) { total += refused[k]; parts.push(k + " " + refused[k]); });
        $("pairing-stats").textContent = "Codes waiting: " + res.data.pending_codes + ". Refused codes in the last hour: " +
          total + (parts.length ? " (" + parts.join(", ") + ")" : "") + ".";
      });
    }

    $("discovered").addEventListener("click", function (e) {
      var b = e.target.closest("button[data-action=pair]");
      if (!b) return;
      var d = discovered[keyOfRow(b, $("discovered"))];
      if (!d) return;
      $("pair-name").value = d.name;
      $("pair-code").focus();
      say("pair-msg", "Enter the code shown by “" + d.name + "” (on its own page or in its log).");
    });

    $("scan-form").addEventListener("submit", function (e) {
      e.preventDefault();
      var form = e.target, body = { cidr: $("scan-cidr").value.trim() }, port = $("scan-port").value;
      if (port) body.port = parseInt(port, 10);
      busy(form, true);
      say("scan-msg", "Scanning " + body.cidr + "…");
      api("POST", "/v1/discovery/scan", body).then(function (res) {
        busy(form, false);
        if (!res.ok) { say("scan-msg", detail(res), "error"); return; }
        var paired = res.data.filter(function (d) { return d.paired; }).length;
        say("scan-msg", "Found " + res.data.length + " camera(s) in " + body.cidr +
          (paired ? ", " + paired + " already paired" : "") + ".", "ok");
        loadDiscovery();
      });
    });

    /* -------------------------------------------------------------- admins */
    function adminItem(a) {
      var li = el("li");
      var what = el("div", { "class": "what" });
      what.appendChild(el("strong", null, a.username));
      if (a.id === me) what.appendChild(el("span", { "class": "muted" }, " (you)"));
      if (a.disabled) { what.appendChild(document.createTextNode(" ")); what.appendChild(badge("disabled")); }
      what.appendChild(el("span", { "class": "meta" }, "added " + local(a.created_at) + " · last login " + ago(a.last_login_at)));
      li.appendChild(what);
      if (a.id !== me) {
        li.appendChild(el("button", { type: "button", "data-action": "toggle" }, a.disabled ? "Enable" : "Disable"));
        li.appendChild(el("button", { type: "button", "class": "danger", "data-action": "delete" }, "Delete"));
      }
      return li;
    }

    function loadAdmins() {
      api("GET", "/v1/admins").then(function (res) {
        if (!res.ok) { say("admins-msg", detail(res), "error"); return; }
        admins = {};
        res.data.forEach(function (a) { admins[a.id] = a; });
        sync($("admins"), res.data, function (a) { return a.id; }, adminItem);
      });
    }

    $("admins").addEventListener("click", function (e) {
      var b = e.target.closest("button[data-action]");
      if (!b) return;
      var a = admins[keyOfRow(b, $("admins"))];
      if (!a) return;
      var path = "/v1/admins/" + encodeURIComponent(a.id);
      if (b.getAttribute("data-action") === "toggle") {
        api("PATCH", path, { disabled: !a.disabled }).then(function (res) {
          if (!res.ok) { say("admins-msg", detail(res), "error"); return; }
          say("admins-msg", (res.data.disabled ? "Disabled " : "Enabled ") + res.data.username + ".", "ok");
          loadAdmins();
        });
      } else {
        ask("Delete the admin “" + a.username + "” and their API tokens?", { ok: "Delete", danger: true }).then(function (v) {
          if (v === null) return;
          api("DELETE", path).then(function (res) {
            if (!res.ok) { say("admins-msg", detail(res), "error"); return; }
            say("admins-msg", "Deleted " + a.username + ".", "ok");
            loadAdmins();
          });
        });
      }
    });

    $("admin-form").addEventListener("submit", function (e) {
      e.preventDefault();
      var form = e.target;
      busy(form, true);
      api("POST", "/v1/admins", { username: $("admin-username").value.trim(), password: $("admin-password").value }).then(function (res) {
        busy(form, false);
        if (!res.ok) { say("admins-msg", detail(res), "error"); return; }
        form.reset();
        say("admins-msg", "Added the admin " + res.data.username + ".", "ok");
        loadAdmins();
      });
    });

    $("password-form").addEventListener("submit", function (e) {
      e.preventDefault();
      var form = e.target;
      busy(form, true);
      api("POST", "/v1/admins/me/password", { current_password: $("pw-current").value, new_password: $("pw-new").value }).then(function (res) {
        if (!res.ok) { busy(form, false); say("admins-msg", detail(res), "error"); return; }
        form.reset();
        say("admins-msg", "Password changed. Log in again with the new password…", "ok");
        setTimeout(function () { location.replace("/login"); }, 1500);
      });
    });

    /* -------------------------------------------------------------- API tokens */
    function tokenItem(t) {
      var li = el("li");
      var what = el("div", { "class": "what" });
      what.appendChild(el("strong", null, t.name));
      var expired = t.expires_at && parseTime(t.expires_at) <= Date.now() + skew;
      if (t.revoked_at) { what.appendChild(document.createTextNode(" ")); what.appendChild(badge("offline", "revoked")); }
      else if (expired) { what.appendChild(document.createTextNode(" ")); what.appendChild(badge("disabled", "expired")); }
      var meta = [t.prefix + "…", "scopes: " + t.scopes.join(", "), "created " + local(t.created_at),
        t.last_used_at ? "last used " + ago(t.last_used_at) : "never used"];
      if (t.expires_at) meta.push((expired ? "expired " : "expires ") + local(t.expires_at));
      what.appendChild(el("span", { "class": "meta" }, meta.join(" · ")));
      li.appendChild(what);
      if (!t.revoked_at) li.appendChild(el("button", { type: "button", "class": "danger", "data-action": "revoke" }, "Revoke"));
      return li;
    }

    function loadTokens() {
      api("GET", "/v1/tokens").then(function (res) {
        if (!res.ok) { say("tokens-msg", detail(res), "error"); return; }
        tokens = {};
        res.data.forEach(function (t) { tokens[t.id] = t; });
        sync($("tokens"), res.data, function (t) { return t.id; }, tokenItem);
        $("no-tokens").hidden = res.data.length > 0;
      });
    }

    $("tokens").addEventListener("click", function (e) {
      var b = e.target.closest("button[data-action=revoke]");
      if (!b) return;
      var t = tokens[keyOfRow(b, $("tokens"))];
      if (!t) return;
      ask("Revoke the API token “" + t.name + "”? Programs using it are refused from their next request.",
        { ok: "Revoke", danger: true }).then(function (v) {
        if (v === null) return;
        api("DELETE", "/v1/tokens/" + encodeURIComponent(t.id)).then(function (res) {
          if (!res.ok) { say("tokens-msg", detail(res), "error"); return; }
          say("tokens-msg", "Revoked “" + t.name + "”.", "ok");
          loadTokens();
        });
      });
    });

    $("token-form").addEventListener("submit", function (e) {
      e.preventDefault();
      var form = e.target;
      var scopes = Array.prototype.map.call(form.querySelectorAll("input[name=scopes]:checked"), function (i) { return i.value; });
      if (!scopes.length) { say("tokens-msg", "Choose at least one scope.", "error"); return; }
      var body = { name: $("token-name").value.trim(), scopes: scopes }, days = $("token-days").value;
      if (days) body.expires_in_days = parseInt(days, 10);
      busy(form, true);
      api("POST", "/v1/tokens", body).then(function (res) {
        busy(form, false);
        if (!res.ok) { say("tokens-msg", detail(res), "error"); return; }
        form.reset();
        say("tokens-msg", "Created “" + res.data.name + "”.", "ok");
        $("new-token").hidden = false;
        $("new-token-value").value = res.data.token;
        say("new-token-msg", "");
        $("new-token-value").focus();
        $("new-token-value").select();
        loadTokens();
      });
    });

    $("new-token-copy").addEventListener("click", function () {
      var input = $("new-token-value");
      input.focus();
      input.select();
      function fallback() {
        var copied = false;
        try { copied = document.execCommand("copy"); } catch (err) { copied = false; }
        say("new-token-msg", copied ? "Copied." : "Selected: press Ctrl+C (or ⌘C) to copy.", copied ? "ok" : "");
      }
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(input.value).then(function () { say("new-token-msg", "Copied.", "ok"); }, fallback);
      } else fallback();
    });
    $("new-token-value").addEventListener("focus", function (e) { e.target.select(); });

    /* -------------------------------------------------------------- session */
    $("logout").addEventListener("click", function () {
      api("POST", "/v1/auth/logout").then(function () { location.replace("/login"); });
    });

    function tick() {
      if (document.hidden) return;
      loadCameras();
      loadDiscovery();
    }

    api("GET", "/v1/auth/me").then(function (res) {
      if (!res.ok) { say("cameras-msg", detail(res), "error"); return; }
      csrf = res.data.csrf_token || "";
      me = res.data.admin.id;
      $("who").textContent = res.data.admin.username;
      loadCameras();
      loadDiscovery();
      loadAdmins();
      loadTokens();
      setInterval(tick, REFRESH_MS);
      document.addEventListener("visibilitychange", tick);
    });
  }

  /* ================================================================== live view */
  /* The MJPEG stream of camera `cameraId` in `img`, opened with a viewer ticket (POST
     /v1/cameras/{id}/live-ticket: a short-lived URL that only this camera's MJPEG view accepts, so no
     login on the camera). The listeners are attached before any src is set, so every failure is
     reported: report(text, kind) gets the message ("" once frames arrive). A failed stream is retried
     with a new ticket (2 s, 4 s ... at most 30 s apart). start()/stop() open and close the stream. */
  function mjpegViewer(img, cameraId, report) {
    var running = false, timer = null, failures = 0, seq = 0;
    function later() {
      clearTimeout(timer);
      failures++;
      timer = setTimeout(open, Math.min(30000, 2000 * Math.pow(2, Math.min(failures - 1, 4))));
    }
    img.addEventListener("load", function () {
      if (!running || !img.getAttribute("src")) return;
      failures = 0;
      report("", "");
    });
    img.addEventListener("error", function () {
      if (!running || !img.getAttribute("src")) return;
      img.removeAttribute("src");
      report("The MJPEG stream did not load: the camera may be offline, restarting or unreachable from this " +
        "browser. Trying again…", "error");
      later();
    });
    function open() {
      if (!running) return;
      var mine = ++seq;
      api("POST", "/v1/cameras/" + encodeURIComponent(cameraId) + "/live-ticket").then(function (res) {
        if (!running || mine !== seq) return;
        if (!res.ok) {
          report(detail(res), "error");
          if (res.status !== 403 && res.status !== 404) later();
          return;
        }
        if (!img.complete || !img.naturalWidth) report("Connecting to the camera…", "");
        img.src = res.data.mjpeg_url;
      });
    }
    return {
      start: function () { if (running) return; running = true; failures = 0; open(); },
      stop: function () { running = false; seq++; clearTimeout(timer); img.removeAttribute("src"); report("", ""); }
    };
  }

  function initLive() {
    var main = $("live");
    if (!main) return;
    var id = main.getAttribute("data-camera-id");
    var frame = $("webrtc"), img = $("mjpeg"), toggle = $("view-toggle");
    var frameSrc = frame ? frame.getAttribute("src") : null;
    var viewer = img ? mjpegViewer(img, id, function (text, kind) { say("mjpeg-msg", text, kind); }) : null;
    var showingMjpeg = !!img && !frame;

    if (toggle && frame && img) {
      toggle.addEventListener("click", function () {
        var toMjpeg = toggle.getAttribute("data-showing") === "webrtc";
        showingMjpeg = toMjpeg;
        $("webrtc-view").hidden = toMjpeg;
        $("mjpeg-view").hidden = !toMjpeg;
        if (toMjpeg) { frame.src = "about:blank"; viewer.start(); }
        else { viewer.stop(); frame.src = frameSrc; }
        toggle.setAttribute("data-showing", toMjpeg ? "mjpeg" : "webrtc");
        toggle.textContent = toMjpeg ? "Show WebRTC instead" : "Show MJPEG instead";
      });
    }
    if (viewer) {
      document.addEventListener("visibilitychange", function () {
        if (document.hidden) viewer.stop();
        else if (showingMjpeg) viewer.start();
      });
    }

    function refresh() {
      if (document.hidden) return;
      api("GET", "/v1/cameras/" + encodeURIComponent(id)).then(function (res) {
        if (res.status === 404) { say("live-msg", "This camera is no longer paired.", "error"); return; }
        if (!res.ok) { say("live-msg", detail(res), "error"); return; }
        var c = res.data, head = $("live-state");
        $("live-name").textContent = c.name;
        head.className = "badge state-" + c.state;
        head.textContent = stateLabel(c.state);
        $("st-state").textContent = stateLabel(c.state);
        $("st-streaming").textContent = yesNo(c.streaming);
        $("st-fps").textContent = fps(c.detection_fps);
        $("st-temp").textContent = celsius(c.temperature_c);
        $("st-seen").textContent = ago(c.last_seen_at);
        $("st-seen").title = local(c.last_seen_at);
        $("st-version").textContent = c.version || "—";
        say("live-msg", "");
      });
    }
    api("GET", "/v1/auth/me").then(function (res) {
      if (res.ok) csrf = res.data.csrf_token || "";
      if (viewer && showingMjpeg) viewer.start();
    });
    refresh();
    setInterval(refresh, REFRESH_MS);
    document.addEventListener("visibilitychange", refresh);
  }

  /* ================================================================== grid of live views */
  function initGrid() {
    var tiles = {}, GRID_REFRESH_MS = 15000;

    function build(c) {
      var tile = el("figure", { "class": "tile", "data-key": c.id });
      var link = el("a", { href: "/cameras/" + encodeURIComponent(c.id) + "/live", "class": "tile-view",
        title: "Open the live view of " + c.name });
      var img = el("img", { alt: "Live view of " + c.name, referrerpolicy: "no-referrer" });
      link.appendChild(img);
      var cap = el("figcaption");
      var name = el("span", { "class": "tile-name" }, c.name);
      var state = badge(c.state);
      var msg = el("p", { "class": "msg", role: "status" });
      cap.appendChild(name);
      cap.appendChild(state);
      tile.appendChild(link);
      tile.appendChild(cap);
      tile.appendChild(msg);
      var t = { node: tile, name: name, state: state, viewer: mjpegViewer(img, c.id, function (text, kind) {
        msg.textContent = text || "";
        msg.className = "msg" + (kind ? " " + kind : "");
      }) };
      return t;
    }

    function load() {
      return api("GET", "/v1/cameras").then(function (res) {
        if (!res.ok) { say("grid-msg", detail(res), "error"); return; }
        say("grid-msg", "");
        var seen = {}, container = $("tiles"), online = 0;
        res.data.forEach(function (c, i) {
          seen[c.id] = 1;
          if (c.state === "online") online++;
          var t = tiles[c.id];
          if (!t) {
            t = tiles[c.id] = build(c);
            container.insertBefore(t.node, container.children[i] || null);
            if (!document.hidden) t.viewer.start();
          } else if (container.children[i] !== t.node) {
            container.insertBefore(t.node, container.children[i] || null);
          }
          t.name.textContent = c.name;
          t.state.className = "badge state-" + c.state;
          t.state.textContent = stateLabel(c.state);
        });
        for (var id in tiles) {
          if (!seen[id]) { tiles[id].viewer.stop(); tiles[id].node.remove(); delete tiles[id]; }
        }
        $("no-tiles").hidden = res.data.length > 0;
        $("grid-count").textContent = res.data.length ? "(" + online + " of " + res.data.length + " online)" : "";
      });
    }

    document.addEventListener("visibilitychange", function () {
      for (var id in tiles) { if (document.hidden) tiles[id].viewer.stop(); else tiles[id].viewer.start(); }
      if (!document.hidden) load();
    });
    api("GET", "/v1/auth/me").then(function (res) {
      if (!res.ok) { say("grid-msg", detail(res), "error"); return; }
      csrf = res.data.csrf_token || "";
      $("who").textContent = res.data.admin.username;
      load();
      setInterval(function () { if (!document.hidden) load(); }, GRID_REFRESH_MS);
    });
  }

  /* ================================================================== people */
  /* ------------------------------------------------------------ times and counts (people, sightings) */
  var DAY_MS = 86400000;

  function plural(n, one, many) { return n + " " + (n === 1 ? one : (many || one + "s")); }

  function duration(s) {
    s = Math.max(0, Math.round(s || 0));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min" + (s % 60 ? " " + (s % 60) + " s" : "");
    var m = Math.floor((s % 3600) / 60);
    return Math.floor(s / 3600) + " h" + (m ? " " + m + " min" : "");
  }

  function clock(v) {
    var t = parseTime(v);
    return isNaN(t) ? "" : new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function dayKey(v) {
    var d = new Date(parseTime(v));
    return d.getFullYear() + "-" + (d.getMonth() + 1) + "-" + d.getDate();
  }

  function dayLabel(v) {
    var d = new Date(parseTime(v)), today = new Date(Date.now() + skew);
    var yesterday = new Date(today.getTime() - DAY_MS);
    var label = d.toLocaleDateString([], { weekday: "long", year: "numeric", month: "long", day: "numeric" });
    if (dayKey(d.getTime() / 1000) === dayKey(today.getTime() / 1000)) return "Today · " + label;
    if (dayKey(d.getTime() / 1000) === dayKey(yesterday.getTime() / 1000)) return "Yesterday · " + label;
    return label;
  }

  /* Sightings as bars on one lane per camera between start and end (ms since the epoch), lanes in name
     order; opts: label(s) the lane's camera name, title(s) a bar's tooltip, hue(s) a bar's colour (none:
     the default colour). Returns the number of lanes drawn. */
  function drawLanes(bar, list, start, end, opts) {
    var span = end - start, rows = {}, order = [];
    bar.textContent = "";
    list.forEach(function (s) {
      var a = Math.max(parseTime(s.started_at), start), b = Math.min(parseTime(s.ended_at), end);
      if (isNaN(a) || isNaN(b) || b < start || a > end) return;
      if (!rows[s.camera_id]) {
        var row = el("div", { "class": "bar-row", "data-camera-id": s.camera_id });
        row.appendChild(el("span", { "class": "bar-cam" }, opts.label(s)));
        row.appendChild(el("div", { "class": "bar-track" }));
        rows[s.camera_id] = row;
        order.push(s.camera_id);
      }
      var seg = el("span", { "class": opts.hue ? "bar-seg person" : "bar-seg", title: opts.title(s) });
      if (opts.hue) seg.setAttribute("data-person-id", s.person_id);
      /* positioned and coloured through custom properties (CSSOM), not a style attribute: allowed by the CSP */
      seg.style.setProperty("--left", ((a - start) / span * 100).toFixed(3) + "%");
      seg.style.setProperty("--width", (Math.max(b - a, 0) / span * 100).toFixed(3) + "%");
      if (opts.hue) seg.style.setProperty("--hue", String(opts.hue(s)));
      rows[s.camera_id].querySelector(".bar-track").appendChild(seg);
    });
    order.sort(function (x, y) { return rows[x].firstChild.textContent.localeCompare(rows[y].firstChild.textContent); });
    order.forEach(function (id) { bar.appendChild(rows[id]); });
    bar.hidden = order.length === 0;
    return order.length;
  }

  /* ================================================================== sightings across the fleet */
  function initSightings() {
    var PAGE = 100, BAR_MAX = 1000, offset = 0, more = false, lastBar = null, people = {}, cameras = {};

    /* one colour per person of the day, far apart on the colour wheel (golden angle), in name order */
    function hues(list) {
      var names = {}, out = {};
      list.forEach(function (s) { names[s.person_id] = s.person_name || ""; });
      Object.keys(names).sort(function (a, b) { return names[a].localeCompare(names[b]) || (a < b ? -1 : 1); })
        .forEach(function (id, i) { out[id] = Math.round((205 + i * 137.508) % 360); });
      return { hue: out, names: names };
    }

    function renderLegend(h) {
      var box = $("sg-legend");
      box.textContent = "";
      Object.keys(h.hue).forEach(function (id) {
        var li = el("li", { "data-person-id": id });
        var sw = el("span", { "class": "swatch" });
        sw.style.setProperty("--hue", String(h.hue[id]));
        li.appendChild(sw);
        li.appendChild(document.createTextNode(h.names[id]));
        box.appendChild(li);
      });
      box.hidden = !box.children.length;
    }

    function dayBounds() {
      var v = $("sg-day").value.split("-");
      var start = new Date(Number(v[0]), Number(v[1]) - 1, Number(v[2]));
      var end = new Date(Number(v[0]), Number(v[1]) - 1, Number(v[2]) + 1); /* local midnight: DST-safe */
      return { start: start.getTime(), end: end.getTime() };
    }

    function query(extra) {
      var p = new URLSearchParams(), d = dayBounds();
      p.set("since", new Date(d.start).toISOString());
      p.set("until", new Date(d.end - 1).toISOString());
      if ($("sg-person").value) p.set("person_id", $("sg-person").value);
      if ($("sg-camera").value) p.set("camera_id", $("sg-camera").value);
      for (var k in extra) p.set(k, extra[k]);
      return "/v1/sightings?" + p.toString();
    }

    function renderBar(list) {
      var sig = JSON.stringify(list) + $("sg-day").value;
      if (sig === lastBar) return;
      lastBar = sig;
      var d = dayBounds(), h = hues(list);
      renderLegend(h);
      var lanes = drawLanes($("sg-bar"), list, d.start, d.end, {
        label: function (s) { return s.camera_name || "camera"; },
        title: function (s) {
          return s.person_name + " · " + (s.camera_name || "") + " · " + clock(s.started_at) + "–" + clock(s.ended_at) +
            " · " + plural(s.detections, "detection");
        },
        hue: function (s) { return h.hue[s.person_id]; },
      });
      $("sg-bar-empty").hidden = lanes > 0;
      $("sg-scale").hidden = lanes === 0;
      if (list.length >= BAR_MAX) say("sg-msg", "The chart shows the day's latest " + BAR_MAX + " sightings; filter by person or camera for the rest.");
    }

    function item(s) {
      var li = el("li", { "class": "sighting", "data-id": s.id });
      var what = el("div", { "class": "what" });
      var who = el("a", { "class": "s-person", href: "/people#person=" + encodeURIComponent(s.person_id) }, s.person_name);
      what.appendChild(who);
      what.appendChild(document.createTextNode(" on "));
      what.appendChild(el("strong", { "class": "s-camera" }, s.camera_name || "camera"));
      what.appendChild(el("span", { "class": "meta s-time" }, clock(s.started_at) + " – " + clock(s.ended_at)));
      li.appendChild(what);
      li.appendChild(el("span", { "class": "s-duration" }, duration(s.duration_s)));
      li.appendChild(el("span", { "class": "s-detections muted" }, plural(s.detections, "detection")));
      return li;
    }

    function renderList(list, append) {
      var box = $("sg-list"), seen = {};
      if (!append) box.textContent = "";
      Array.prototype.forEach.call(box.children, function (li) { seen[li.getAttribute("data-id")] = true; });
      list.forEach(function (s) { if (!seen[s.id]) box.appendChild(item(s)); });
      $("sg-none").hidden = box.children.length > 0;
      $("sg-more").hidden = list.length < PAGE;
    }

    function load(append) {
      if (!$("sg-day").value) return;
      $("sg-day-title").textContent = dayLabel(dayBounds().start / 1000);
      var asks = [api("GET", query({ limit: String(BAR_MAX) }))];
      asks.push(api("GET", query({ limit: String(PAGE), offset: String(append ? offset : 0) })));
      Promise.all(asks).then(function (r) {
        var bad = r.filter(function (x) { return !x.ok; })[0];
        if (bad) { say("sg-msg", "Could not load the sightings: " + detail(bad), "error"); return; }
        say("sg-msg", "");
        renderBar(r[0].data);
        if (!append) offset = 0;
        offset += r[1].data.length;
        renderList(r[1].data, append);
      });
    }

    function options(select, list, label) {
      var keep = select.value;
      while (select.options.length > 1) select.remove(1);
      list.forEach(function (x) { select.appendChild(el("option", { value: x.id }, label(x))); });
      select.value = keep;
    }

    function restore() {
      var p = new URLSearchParams(location.hash.slice(1));
      var today = new Date(Date.now() + skew);
      var day = p.get("day") || (today.getFullYear() + "-" + String(today.getMonth() + 1).padStart(2, "0") + "-" +
        String(today.getDate()).padStart(2, "0"));
      $("sg-day").value = /^\d{4}-\d\d-\d\d$/.test(day) ? day : "";
      if (p.get("person") && people[p.get("person")]) $("sg-person").value = p.get("person");
      if (p.get("camera") && cameras[p.get("camera")]) $("sg-camera").value = p.get("camera");
    }

    function remember() {
      var p = new URLSearchParams();
      p.set("day", $("sg-day").value);
      if ($("sg-person").value) p.set("person", $("sg-person").value);
      if ($("sg-camera").value) p.set("camera", $("sg-camera").value);
      if (history.replaceState) history.replaceState(null, "", "#" + p.toString());
    }

    ["sg-day", "sg-person", "sg-camera"].forEach(function (id) {
      $(id).addEventListener("change", function () { more = false; remember(); load(false); });
    });
    $("sg-filter").addEventListener("submit", function (e) { e.preventDefault(); });
    $("sg-more").addEventListener("click", function () { more = true; load(true); });
    $("logout").addEventListener("click", function () {
      api("POST", "/v1/auth/logout").then(function () { location.replace("/login"); });
    });

    api("GET", "/v1/auth/me").then(function (res) {
      if (!res.ok) { say("sg-msg", detail(res), "error"); return; }
      csrf = res.data.csrf_token || "";
      $("who").textContent = res.data.admin.username;
      Promise.all([api("GET", "/v1/people"), api("GET", "/v1/cameras")]).then(function (r) {
        if (r[0].ok) { r[0].data.forEach(function (p) { people[p.id] = p; }); options($("sg-person"), r[0].data, function (p) { return p.name; }); }
        if (r[1].ok) { r[1].data.forEach(function (c) { cameras[c.id] = c; }); options($("sg-camera"), r[1].data, function (c) { return c.name; }); }
        restore();
        load(false);
      });
      setInterval(function () { if (!document.hidden && !more) load(false); }, REFRESH_MS);
    });
  }

  function initPeople() {
    var people = {}, peopleList = [], cameraNames = {}, groups = {}, current = null, lastDays = null;
    var NEW = "";
    initAsk();

    function cameraName(id, name) { return name || cameraNames[id] || "camera " + String(id).slice(0, 8); }

    function seenText(ls) {
      return ls ? "last seen on " + cameraName(ls.camera_id, ls.camera_name) + ", " + ago(ls.at) : "never seen";
    }

    /* -------------------------------------------------------------- people */
    function personItem(p) {
      var li = el("li", { "data-id": p.id });
      var what = el("div", { "class": "what" });
      var name = el("button", { type: "button", "class": "link person-name", "data-action": "timeline",
        title: "Show the sightings of " + p.name }, p.name);
      what.appendChild(name);
      what.appendChild(el("span", { "class": "meta faces" }, plural(p.encodings, "face") + " enrolled"));
      var seen = el("span", { "class": "meta seen" }, seenText(p.last_seen));
      if (p.last_seen) seen.title = local(p.last_seen.at);
      what.appendChild(seen);
      li.appendChild(what);
      var actions = el("div", { "class": "actions" });
      actions.appendChild(el("button", { type: "button", "data-action": "timeline" }, "Timeline"));
      var upload = el("label", { "class": "button file" });
      upload.appendChild(document.createTextNode("Add photo"));
      upload.appendChild(el("input", { type: "file", accept: "image/jpeg,.jpg,.jpeg", "class": "visually-hidden",
        "data-action": "enrol", "aria-label": "Add a photo of " + p.name }));
      actions.appendChild(upload);
      actions.appendChild(el("button", { type: "button", "data-action": "rename" }, "Rename"));
      actions.appendChild(el("button", { type: "button", "data-action": "merge" }, "Merge…"));
      actions.appendChild(el("button", { type: "button", "class": "danger", "data-action": "delete" }, "Delete"));
      li.appendChild(actions);
      if (p.id === current) li.classList.add("current");
      return li;
    }

    function refreshPerson(li, p) {
      var seen = li.querySelector(".seen");
      seen.textContent = seenText(p.last_seen);
      seen.title = p.last_seen ? local(p.last_seen.at) : "";
      li.classList.toggle("current", p.id === current);
    }

    function renderPeople(list) {
      peopleList = list;
      people = {};
      list.forEach(function (p) { people[p.id] = p; });
      sync($("people"), list, function (p) { return p.id; }, personItem, refreshPerson);
      $("people-count").textContent = list.length ? "(" + list.length + ")" : "";
      $("no-people").hidden = list.length > 0;
      Array.prototype.forEach.call(document.querySelectorAll("#groups select[data-action=who]"), fillWho);
      if (current && !people[current]) closeTimeline();
      else if (current) $("tl-name").textContent = people[current].name;
    }

    function loadPeople() {
      return api("GET", "/v1/people").then(function (res) {
        if (!res.ok) { say("people-msg", "Could not load the people: " + detail(res), "error"); return; }
        renderPeople(res.data);
      });
    }

    function personPath(p) { return "/v1/people/" + encodeURIComponent(p.id); }

    $("person-form").addEventListener("submit", function (e) {
      e.preventDefault();
      var form = e.target;
      busy(form, true);
      api("POST", "/v1/people", { name: $("person-name").value.trim() }).then(function (res) {
        busy(form, false);
        if (!res.ok) { say("people-msg", detail(res), "error"); return; }
        form.reset();
        say("people-msg", "Added “" + res.data.name + "”: add a photo of them, or name a group of unknown faces.", "ok");
        loadPeople();
      });
    });

    $("people").addEventListener("click", function (e) {
      var b = e.target.closest("button[data-action]");
      if (!b) return;
      var p = people[keyOfRow(b, $("people"))];
      if (!p) return;
      var action = b.getAttribute("data-action");
      if (action === "timeline") {
        showTimeline(p.id, true);
      } else if (action === "rename") {
        ask("New name for “" + p.name + "”:", { value: p.name, ok: "Rename" }).then(function (name) {
          if (name === null || name === p.name) return;
          api("PATCH", personPath(p), { name: name }).then(function (res) {
            if (!res.ok) { say("people-msg", detail(res), "error"); return; }
            say("people-msg", "Renamed “" + p.name + "” to “" + res.data.name + "”.", "ok");
            loadPeople();
          });
        });
      } else if (action === "merge") {
        var others = peopleList.filter(function (o) { return o.id !== p.id; });
        if (!others.length) { say("people-msg", "There is nobody else to merge into “" + p.name + "”.", "error"); return; }
        ask("Merge into “" + p.name + "”: the faces and sightings of the person chosen below move to “" + p.name +
          "”, then that person is deleted.", {
          ok: "Merge",
          options: others.map(function (o) { return { value: o.id, label: o.name + " (" + plural(o.encodings, "face") + ")" }; }),
        }).then(function (otherId) {
          if (otherId === null || !people[otherId]) return;
          var other = people[otherId];
          api("POST", personPath(p) + "/merge", { other_id: otherId }).then(function (res) {
            if (!res.ok) { say("people-msg", detail(res), "error"); return; }
            say("people-msg", "Merged “" + other.name + "” into “" + res.data.name + "” (" +
              plural(res.data.encodings, "face") + " enrolled).", "ok");
            if (current === otherId) showTimeline(p.id, false);
            loadPeople();
            if (current) loadTimeline();
          });
        });
      } else if (action === "delete") {
        ask("Delete “" + p.name + "”? This erases all their faces, crops and sightings.", { ok: "Delete", danger: true }).then(function (v) {
          if (v === null) return;
          api("DELETE", personPath(p)).then(function (res) {
            if (!res.ok) { say("people-msg", detail(res), "error"); return; }
            say("people-msg", "Deleted “" + p.name + "” with " + plural(res.data.observations || 0, "face") + " and " +
              plural(res.data.sightings || 0, "sighting") + ".", "ok");
            if (current === p.id) closeTimeline();
            loadPeople();
          });
        });
      }
    });

    $("people").addEventListener("change", function (e) {
      var input = e.target;
      if (input.getAttribute("data-action") !== "enrol" || !input.files || !input.files.length) return;
      var p = people[keyOfRow(input, $("people"))], file = input.files[0];
      if (!p) return;
      var body = new FormData();
      body.append("file", file, file.name);
      input.disabled = true;
      say("people-msg", "Looking for a face in “" + file.name + "”…");
      api("POST", personPath(p) + "/faces", body).then(function (res) {
        input.disabled = false;
        input.value = "";
        if (!res.ok) { say("people-msg", detail(res), "error"); return; }
        say("people-msg", "Added a face to “" + p.name + "”: " + plural(res.data.encodings, "face") + " enrolled.", "ok");
        loadPeople();
      });
    });

    /* -------------------------------------------------------------- unknown faces */
    function fillWho(select) {
      var keep = select.value;
      select.textContent = "";
      select.appendChild(el("option", { value: NEW }, "a new person…"));
      peopleList.forEach(function (p) { select.appendChild(el("option", { value: p.id }, p.name)); });
      select.value = keep && people[keep] ? keep : NEW;
      var name = select.form && select.form.querySelector("input[name=name]");
      if (name) { name.hidden = select.value !== NEW; name.required = select.value === NEW; }
    }

    function groupStatus(g) {
      var cams = g.camera_ids.map(function (id) { return cameraName(id); }).join(", ");
      return plural(g.faces, "face") + " · " + (cams || "no camera") + " · last seen " + ago(g.last_seen);
    }

    function groupItem(item) {
      var g = groups[item.id], li = el("li", { "class": "group", "data-id": item.id });
      var crops = el("div", { "class": "crops" });
      g.samples.forEach(function (s, i) {
        var img = el("img", { src: s.crop_url, alt: "Unknown face " + (i + 1), width: "72", height: "72",
          title: cameraName(s.camera_id) + " · " + local(s.captured_at) });
        img.addEventListener("error", function () { img.classList.add("broken"); });
        crops.appendChild(img);
      });
      if (!g.samples.length) crops.appendChild(el("span", { "class": "muted small" }, "no picture"));
      li.appendChild(crops);
      var body = el("div", { "class": "what" });
      var status = el("span", { "class": "meta status" }, groupStatus(g));
      status.title = "first seen " + local(g.first_seen) + " · last seen " + local(g.last_seen);
      body.appendChild(status);
      var form = el("form", { "class": "row assign", autocomplete: "off" });
      var label = el("label", null, "This is…");
      var select = el("select", { name: "person", "data-action": "who" });
      label.appendChild(select);
      form.appendChild(label);
      form.appendChild(el("input", { name: "name", maxlength: "100", placeholder: "name", "aria-label": "Name of the new person",
        "data-action": "name" }));
      form.appendChild(el("button", { type: "submit", "data-action": "assign" }, "Save"));
      form.appendChild(el("button", { type: "button", "class": "danger", "data-action": "forget" }, "Delete"));
      body.appendChild(form);
      li.appendChild(body);
      fillWho(select);
      return li;
    }

    function refreshGroup(li, item) {
      var status = li.querySelector(".status");
      status.textContent = groupStatus(groups[item.id]);
    }

    function loadGroups() {
      return api("GET", "/v1/unknown-groups?samples=4").then(function (res) {
        if (!res.ok) { say("groups-msg", "Could not load the unknown faces: " + detail(res), "error"); return; }
        groups = {};
        res.data.forEach(function (g) { groups[g.id] = g; });
        /* rebuilt only when the pictures change; counts and times are updated in place */
        var items = res.data.map(function (g) {
          return { id: g.id, samples: g.samples.map(function (s) { return s.observation_id; }), status: [g.faces, g.last_seen] };
        });
        sync($("groups"), items, function (g) { return g.id; }, groupItem, refreshGroup);
        var faces = res.data.reduce(function (n, g) { return n + g.faces; }, 0);
        $("unknown-count").textContent = res.data.length ? "(" + plural(res.data.length, "group") + ", " + plural(faces, "face") + ")" : "";
        $("no-groups").hidden = res.data.length > 0;
      });
    }

    $("groups").addEventListener("change", function (e) {
      if (e.target.getAttribute("data-action") !== "who") return;
      fillWho(e.target);
      if (e.target.value === NEW) e.target.form.querySelector("input[name=name]").focus();
    });

    $("groups").addEventListener("submit", function (e) {
      e.preventDefault();
      var form = e.target, id = keyOfRow(form, $("groups")), select = form.querySelector("select");
      if (!groups[id]) return;
      var body = select.value === NEW ? { name: form.querySelector("input[name=name]").value.trim() } : { person_id: select.value };
      if (body.name === "") { say("groups-msg", "Enter the name of the new person, or choose someone.", "error"); return; }
      busy(form, true);
      api("POST", "/v1/unknown-groups/" + encodeURIComponent(id) + "/assign", body).then(function (res) {
        busy(form, false);
        if (!res.ok) { say("groups-msg", detail(res), "error"); return; }
        say("groups-msg", "Named “" + res.data.person.name + "”: " + plural(res.data.enrolled, "face") + " enrolled.", "ok");
        loadGroups();
        loadPeople();
      });
    });

    $("groups").addEventListener("click", function (e) {
      var b = e.target.closest("button[data-action=forget]");
      if (!b) return;
      var id = keyOfRow(b, $("groups")), g = groups[id];
      if (!g) return;
      ask("Delete this group of " + plural(g.faces, "unknown face") + "? Their crops are erased too.", { ok: "Delete", danger: true }).then(function (v) {
        if (v === null) return;
        api("DELETE", "/v1/unknown-groups/" + encodeURIComponent(id)).then(function (res) {
          if (!res.ok) { say("groups-msg", detail(res), "error"); return; }
          say("groups-msg", "Deleted a group of " + plural(res.data.observations || g.faces, "face") + ".", "ok");
          loadGroups();
        });
      });
    });

    /* -------------------------------------------------------------- timeline */
    function showTimeline(id, scroll) {
      current = id;
      lastDays = null;
      if (history.replaceState) history.replaceState(null, "", "#person=" + encodeURIComponent(id));
      $("timeline-card").hidden = false;
      $("tl-name").textContent = people[id] ? people[id].name : "…";
      Array.prototype.forEach.call($("people").children, function (li) {
        li.classList.toggle("current", li.getAttribute("data-key") === id);
      });
      loadTimeline();
      if (scroll) $("timeline-card").scrollIntoView({ block: "start" });
    }

    function closeTimeline() {
      current = null;
      $("timeline-card").hidden = true;
      if (history.replaceState) history.replaceState(null, "", location.pathname);
      Array.prototype.forEach.call($("people").children, function (li) { li.classList.remove("current"); });
    }
    $("tl-close").addEventListener("click", closeTimeline);

    function renderLast(data) {
      var box = $("tl-last"), s = data.sighting;
      box.textContent = "";
      if (!s) { box.textContent = "Where was " + data.person_name + " last seen? Nowhere yet."; return; }
      box.appendChild(document.createTextNode("Last seen on "));
      box.appendChild(el("strong", { "class": "tl-last-camera" }, cameraName(s.camera_id, s.camera_name)));
      box.appendChild(document.createTextNode(", "));
      var when = el("span", { "class": "tl-last-ago" }, ago(s.ended_at));
      when.title = local(s.ended_at);
      box.appendChild(when);
      box.appendChild(el("span", { "class": "meta" }, local(s.started_at) + " – " + clock(s.ended_at) + " · " +
        duration(s.duration_s) + " · " + plural(s.detections, "detection")));
    }

    function renderBar(list) {
      var end = Date.now() + skew;
      var lanes = drawLanes($("tl-bar"), list, end - DAY_MS, end, {
        label: function (s) { return cameraName(s.camera_id, s.camera_name); },
        title: function (s) {
          return cameraName(s.camera_id, s.camera_name) + " · " + clock(s.started_at) + "–" + clock(s.ended_at) + " · " +
            plural(s.detections, "detection");
        },
      });
      $("tl-bar-empty").hidden = lanes > 0;
    }

    function renderDays(list) {
      var sig = JSON.stringify(list) + JSON.stringify(cameraNames);
      if (sig === lastDays) return;
      lastDays = sig;
      var box = $("tl-days"), dayList = null, key = null;
      box.textContent = "";
      list.forEach(function (s) {
        var k = dayKey(s.started_at);
        if (k !== key) {
          key = k;
          var day = el("section", { "class": "day", "data-day": k });
          day.appendChild(el("h4", null, dayLabel(s.started_at)));
          dayList = el("ul", { "class": "list sightings" });
          day.appendChild(dayList);
          box.appendChild(day);
        }
        var li = el("li", { "class": "sighting", "data-id": s.id });
        var what = el("div", { "class": "what" });
        what.appendChild(el("strong", { "class": "s-camera" }, cameraName(s.camera_id, s.camera_name)));
        what.appendChild(el("span", { "class": "meta s-time" }, clock(s.started_at) + " – " + clock(s.ended_at)));
        li.appendChild(what);
        li.appendChild(el("span", { "class": "s-duration" }, duration(s.duration_s)));
        li.appendChild(el("span", { "class": "s-detections muted" }, plural(s.detections, "detection")));
        dayList.appendChild(li);
      });
      $("tl-none").hidden = list.length > 0;
    }

    function loadTimeline() {
      var id = current;
      if (!id) return;
      var q = "?person_id=" + encodeURIComponent(id);
      var since = new Date(Date.now() + skew - DAY_MS).toISOString();
      Promise.all([
        api("GET", "/v1/people/" + encodeURIComponent(id) + "/last-seen"),
        api("GET", "/v1/sightings" + q + "&limit=200"),
        api("GET", "/v1/sightings" + q + "&limit=1000&since=" + encodeURIComponent(since)),
      ]).then(function (r) {
        if (id !== current) return;
        if (r[0].status === 404) { closeTimeline(); return; }
        var bad = r.filter(function (x) { return !x.ok; })[0];
        if (bad) { say("tl-msg", "Could not load the sightings: " + detail(bad), "error"); return; }
        say("tl-msg", "");
        $("tl-name").textContent = r[0].data.person_name;
        renderLast(r[0].data);
        renderBar(r[2].data);
        renderDays(r[1].data);
      });
    }

    /* -------------------------------------------------------------- refresh */
    function loadCameras() {
      return api("GET", "/v1/cameras").then(function (res) {
        if (!res.ok) return;
        cameraNames = {};
        res.data.forEach(function (c) { cameraNames[c.id] = c.name; });
      });
    }

    $("logout").addEventListener("click", function () {
      api("POST", "/v1/auth/logout").then(function () { location.replace("/login"); });
    });

    function tick() {
      if (document.hidden) return;
      loadCameras().then(function () {
        loadPeople();
        loadGroups();
        loadTimeline();
      });
    }

    api("GET", "/v1/auth/me").then(function (res) {
      if (!res.ok) { say("people-msg", detail(res), "error"); return; }
      csrf = res.data.csrf_token || "";
      $("who").textContent = res.data.admin.username;
      loadCameras().then(function () { return loadPeople(); }).then(function () {
        loadGroups();
        var m = /^#person=([^&]+)$/.exec(location.hash);
        if (m && people[decodeURIComponent(m[1])]) showTimeline(decodeURIComponent(m[1]), false);
      });
      setInterval(tick, REFRESH_MS);
      document.addEventListener("visibilitychange", tick);
    });
  }

  if (page === "login") initLogin();
  else if (page === "dashboard") initDashboard();
  else if (page === "live") initLive();
  else if (page === "grid") initGrid();
  else if (page === "people") initPeople();
  else if (page === "sightings") initSightings();
})();
