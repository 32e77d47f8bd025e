/* Central dashboard: first-run setup, login, the fleet, pairing, admins, API tokens, live view.
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
    if (body instanceof URLSearchParams) init.body = body;
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
        return { ok: r.ok, status: r.status, data: data };
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
  /* Resolves with the typed value (or "" when there is no input), or null when cancelled. */
  function ask(text, o) {
    o = o || {};
    var dlg = $("ask"), input = $("ask-input"), ok = $("ask-ok");
    if (askResolve) finishAsk(null);
    $("ask-text").textContent = text;
    ok.textContent = o.ok || "OK";
    ok.className = o.danger ? "danger" : "";
    input.hidden = o.value == null;
    input.required = o.value != null;
    input.value = o.value == null ? "" : o.value;
    return new Promise(function (resolve) {
      askResolve = resolve;
      dlg.showModal();
      if (!input.hidden) { input.focus(); input.select(); } else ok.focus();
    });
  }
  function initAsk() {
    $("ask-form").addEventListener("submit", function (e) {
      e.preventDefault();
      var input = $("ask-input");
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

    function renderCameras(list) {
      cams = {};
      list.forEach(function (c) { cams[c.id] = c; });
      sync($("camera-rows"), list, function (c) { return c.id; }, cameraRow, refreshRow);
      var online = list.filter(function (c) { return c.online; }).length;
      $("camera-count").textContent = list.length ? "(" + online + " of " + list.length + " online)" : "";
      $("no-cameras").hidden = list.length > 0;
      $("cameras").hidden = list.length === 0;
    }

    function loadCameras() {
      if (loadingCams) return;
      loadingCams = true;
      api("GET", "/v1/cameras").then(function (res) {
        loadingCams = false;
        if (!res.ok) { say("cameras-msg", "Could not load the cameras: " + detail(res), "error"); return; }
        if ($("cameras-msg").classList.contains("error") && /^Could not load/.test($("cameras-msg").textContent)) say("cameras-msg", "");
        renderCameras(res.data);
      });
    }

    function applyCamera(c) {
      var list = Object.keys(cams).map(function (id) { return id === c.id ? c : cams[id]; });
      if (!cams[c.id]) list.push(c);
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
            renderCameras(Object.keys(cams).map(function (id) { return cams[id]; }));
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
  function initLive() {
    var main = $("live");
    if (!main) return;
    var id = main.getAttribute("data-camera-id");
    var frame = $("webrtc"), img = $("mjpeg"), toggle = $("view-toggle");
    var frameSrc = frame ? frame.getAttribute("src") : null;

    if (img) {
      img.addEventListener("error", function () {
        if (!img.getAttribute("src")) return;
        say("mjpeg-msg", "The MJPEG stream did not load: the camera may be offline or unreachable from this browser, " +
          "or it requires its own login for MJPEG. WebRTC and RTSP do not.", "error");
      });
      img.addEventListener("load", function () { say("mjpeg-msg", ""); });
    }
    if (toggle && frame && img) {
      toggle.addEventListener("click", function () {
        var toMjpeg = toggle.getAttribute("data-showing") === "webrtc";
        $("webrtc-view").hidden = toMjpeg;
        $("mjpeg-view").hidden = !toMjpeg;
        if (toMjpeg) { frame.src = "about:blank"; img.src = img.getAttribute("data-src"); }
        else { img.removeAttribute("src"); say("mjpeg-msg", ""); frame.src = frameSrc; }
        toggle.setAttribute("data-showing", toMjpeg ? "mjpeg" : "webrtc");
        toggle.textContent = toMjpeg ? "Show WebRTC instead" : "Show MJPEG instead";
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
    refresh();
    setInterval(refresh, REFRESH_MS);
    document.addEventListener("visibilitychange", refresh);
  }

  if (page === "login") initLogin();
  else if (page === "dashboard") initDashboard();
  else if (page === "live") initLive();
})();
