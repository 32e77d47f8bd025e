/* Camera page: live view + detection boxes, stills, controls, status. Plain JS, no build step.
   Every /v1 call uses the HttpOnly session cookie; state-changing calls send X-CSRF-Token. */
"use strict";
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var csrf = document.querySelector('meta[name="csrf-token"]').content;

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text != null) e.textContent = text;
    return e;
  }

  /* fetch JSON; 401 means the session ended: back to the login page */
  function api(method, path, body) {
    var opts = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET" && method !== "HEAD") opts.headers["X-CSRF-Token"] = csrf;
    if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    return fetch(path, opts).then(function (r) {
      if (r.status === 401) { location.href = "/login"; throw new Error("session ended"); }
      return r.text().then(function (t) {
        var data = null;
        try { data = t ? JSON.parse(t) : null; } catch (e) { data = { detail: t }; }
        return { ok: r.ok, status: r.status, data: data };
      });
    });
  }
  function detail(res) {
    var d = res.data && res.data.detail;
    return typeof d === "string" ? d : JSON.stringify(d || res.status);
  }
  /* "1 face", "2 faces" */
  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }
  function fmt(v, digits) { return v == null ? "—" : (typeof v === "number" ? +v.toFixed(digits == null ? 1 : digits) : String(v)); }
  function mb(b) { return b >= 1e9 ? fmt(b / 1e9) + " GB" : fmt(b / 1e6) + " MB"; }
  function date(s) { return s.taken_at_iso ? new Date(s.taken_at_iso) : new Date((s.taken_at || 0) * 1000); }
  function when(s) { var t = date(s); return isNaN(t) ? "" : t.toLocaleString(); }
  function time(s) { var t = date(s); return isNaN(t) ? "" : t.toLocaleTimeString(); }

  /* ------------------------------------------------------------------ live view */
  var live = $("live"), viewer = $("viewer"), boxes = $("boxes"), frame = null, boxTimer = null;
  live.addEventListener("error", function () {
    $("live-msg").textContent = "Live view interrupted; retrying…";
    setTimeout(function () { if (!frame) live.src = "/v1/camera/mjpeg?r=" + Date.now(); }, 2000);
  });
  live.addEventListener("load", function () { $("live-msg").textContent = ""; });

  function drawBoxes(r) {
    boxes.textContent = "";
    if (!r || !r.width || !r.height) return;
    [["faces", "face"], ["profiles", "profile"]].forEach(function (kind) {
      (r[kind[0]] || []).forEach(function (b) {
        var d = el("div", { "class": "box " + kind[1] });
        d.style.left = (100 * b.x / r.width) + "%";
        d.style.top = (100 * b.y / r.height) + "%";
        d.style.width = (100 * b.width / r.width) + "%";
        d.style.height = (100 * b.height / r.height) + "%";
        boxes.appendChild(d);
      });
    });
    $("st-faces").textContent = plural(r.nb_faces || 0, "face") + ", " + plural(r.nb_profiles || 0, "profile");
    clearTimeout(boxTimer);
    boxTimer = setTimeout(function () { boxes.textContent = ""; }, 3000);
  }

  if (window.EventSource) {
    var es = new EventSource("/v1/events/stream");
    es.addEventListener("detection", function (e) { try { drawBoxes(JSON.parse(e.data)); } catch (x) { /* ignore */ } });
    es.addEventListener("controls", function () { if (!pending && Date.now() - touched > 3000) loadControls(); });
    es.addEventListener("day_night", refreshStatus);
    es.addEventListener("pairing", function () { loadPairing(); });
  }

  api("GET", "/v1/web/config").then(function (res) {
    var url = res.ok && res.data && res.data.webrtc_url;
    if (!url) return;
    var btn = $("view-toggle");
    btn.hidden = false;
    btn.addEventListener("click", function () {
      if (frame) {
        frame.remove(); frame = null; live.hidden = false; live.src = "/v1/camera/mjpeg?r=" + Date.now(); btn.textContent = "WebRTC";
      } else {
        frame = el("iframe", { src: url, allow: "autoplay; fullscreen", title: "WebRTC live view" });
        live.removeAttribute("src"); live.hidden = true; viewer.insertBefore(frame, boxes); btn.textContent = "MJPEG";
      }
    });
  });

  function streaming(action) {
    api("POST", "/v1/streaming/" + action).then(function (res) {
      $("live-msg").textContent = res.ok ? "Stream " + res.data.state : detail(res);
      refreshStatus();
    });
  }
  $("stream-start").addEventListener("click", function () { streaming("start"); });
  $("stream-stop").addEventListener("click", function () { streaming("stop"); });

  /* ------------------------------------------------------------------ status */
  function refreshStatus() {
    api("GET", "/v1/streaming/status").then(function (r) {
      $("st-stream").textContent = r.ok ? r.data.state + (r.data.fps != null ? ", " + fmt(r.data.fps) + " fps" : "") : detail(r);
    });
    api("GET", "/v1/detection/status").then(function (r) {
      $("st-detect").textContent = r.status === 409 ? "disabled" : r.ok ? (r.data.active ? "active, " : "idle, ") + fmt(r.data.analysed_fps) + " fps" : detail(r);
    });
    api("GET", "/v1/camera/status").then(function (r) {
      if (!r.ok) { $("st-light").textContent = detail(r); return; }
      var s = r.data, dn = s.day_night || {};
      $("st-light").textContent = s.lux != null ? fmt(s.lux) + " lux" : s.scene_luma != null ? "luma " + fmt(s.scene_luma) : "—";
      $("st-temp").textContent = s.sensor_temperature != null ? fmt(s.sensor_temperature) + " °C" : "—";
      $("st-mode").textContent = dn.mode ? dn.mode + (dn.auto ? " (auto)" : " (forced)") : "—";
    });
    api("GET", "/v1/stills/status").then(function (r) {
      if (!r.ok) { $("st-disk").textContent = "—"; return; }
      var d = r.data || {}, parts = [];
      if (typeof d.count === "number") parts.push(plural(d.count, "still"));
      if (typeof d.total_bytes === "number") parts.push(mb(d.total_bytes) + " used");
      if (typeof d.free_disk_bytes === "number") parts.push(mb(d.free_disk_bytes) + " free");
      $("st-disk").textContent = parts.join(", ") || "—";
    }).catch(function () {});
  }
  refreshStatus();
  setInterval(refreshStatus, 4000);

  /* ------------------------------------------------------------------ pairing with the central server */
  var pairing = null;
  function showPairing() {
    var p = pairing, box = $("st-pairing"), text;
    if (!p) return;
    box.textContent = "";
    if (p.state === "unconfigured") text = "not configured (CAMERA_CENTRAL_URL)";
    else if (p.state === "waiting_for_admin" && p.code) {
      var left = p.expires_at ? Math.ceil((Date.parse(p.expires_at) - Date.now()) / 60000) : null;
      box.appendChild(document.createTextNode("Pairing code "));
      box.appendChild(el("strong", { id: "pairing-code" }, p.code));
      text = " — enter it on the central server" +
        (left == null || isNaN(left) ? "" : left > 0 ? " (expires in " + left + " min)" : " (expired; a new code follows)");
    } else if (p.state === "paired") text = "Paired with " + p.central_url + " as " + (p.camera_name || p.device_id);
    else if (p.state === "disabled") text = "Disabled on " + p.central_url + (p.camera_name ? " (" + p.camera_name + ")" : "");
    else if (p.state === "requesting") text = "Requesting a pairing code from " + p.central_url + "…";
    else text = "Central server " + p.central_url + " not available";
    if (p.last_error && p.state !== "unconfigured") text += " — " + p.last_error;
    box.appendChild(document.createTextNode(text));
  }
  function loadPairing() {
    api("GET", "/v1/pairing").then(function (r) {
      if (!r.ok) { $("st-pairing").textContent = detail(r); return; }
      pairing = r.data;
      showPairing();
    }).catch(function () {});
  }
  loadPairing();
  setInterval(loadPairing, 30000);
  setInterval(showPairing, 15000);

  /* ------------------------------------------------------------------ stills */
  var full = $("full"), current = null, cursor = null;
  function openStill(s) {
    current = s;
    $("full-img").src = s.url;
    $("full-open").href = s.url;
    $("full-caption").textContent = when(s) + " · " + (s.trigger || "") + " · " + s.width + "×" + s.height +
      (s.nb_faces ? " · " + plural(s.nb_faces, "face") : "");
    if (full.showModal) full.showModal(); else full.setAttribute("open", "");
  }
  $("full-delete").addEventListener("click", function () {
    if (!current || !confirm("Delete this still?")) return;
    api("DELETE", "/v1/stills/" + encodeURIComponent(current.id)).then(function (r) {
      if (!r.ok) { $("full-caption").textContent = detail(r); return; }
      full.close(); loadLatest(); loadDays();
    });
  });
  function thumb(s) {
    var f = el("figure", { "data-id": s.id });
    f.appendChild(el("img", { src: s.thumbnail_url || s.url, alt: "Still " + when(s), loading: "lazy" }));
    f.appendChild(el("figcaption", null, time(s) + (s.nb_faces ? " · " + plural(s.nb_faces, "face") : "")));
    f.addEventListener("click", function () { openStill(s); });
    return f;
  }
  function loadLatest() {
    api("GET", "/v1/stills/latest").then(function (r) {
      var box = $("latest"), s = r.ok && r.data && (r.data.still || r.data);
      box.textContent = "";
      if (!s || !s.url) { box.appendChild(el("p", { "class": "muted" }, "No stills yet.")); return; }
      var img = el("img", { src: s.thumbnail_url || s.url, alt: "Latest still", id: "latest-img" });
      img.addEventListener("click", function () { openStill(s); });
      box.appendChild(img);
      box.appendChild(el("p", { "class": "muted" }, when(s) + " · " + (s.trigger || "")));
    });
  }
  function loadThumbs(more) {
    var day = $("day").value, grid = $("thumbs");
    if (!more) { grid.textContent = ""; cursor = null; }
    if (!day) { grid.appendChild(el("p", { "class": "muted" }, "No stills yet.")); $("more").hidden = true; return; }
    var q = "/v1/stills?limit=60&day=" + encodeURIComponent(day) + (more && cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
    api("GET", q).then(function (r) {
      var list = (r.ok && r.data && (r.data.items || r.data.stills)) || [];
      if (!list.length && !more) grid.appendChild(el("p", { "class": "muted" }, "No stills that day."));
      list.forEach(function (s) { grid.appendChild(thumb(s)); });
      cursor = r.ok && r.data ? r.data.next_cursor : null;
      $("more").hidden = !cursor;
    });
  }
  function loadDays() {
    api("GET", "/v1/stills/days").then(function (r) {
      var sel = $("day"), days = r.ok ? (Array.isArray(r.data) ? r.data : (r.data && r.data.days) || []) : [];
      var keep = sel.value;
      sel.textContent = "";
      days.forEach(function (d) {
        var name = typeof d === "string" ? d : d.day || d.date, n = typeof d === "object" ? d.count : null;
        if (name) sel.appendChild(el("option", { value: name }, name + (n != null ? " (" + n + ")" : "")));
      });
      var opts = Array.prototype.map.call(sel.options, function (o) { return o.value; }).sort();
      sel.value = opts.indexOf(keep) >= 0 ? keep : opts[opts.length - 1] || "";
      loadThumbs(false);
    });
  }
  $("day").addEventListener("change", function () { loadThumbs(false); });
  $("more").addEventListener("click", function () { loadThumbs(true); });
  $("still-take").addEventListener("click", function () {
    api("POST", "/v1/stills").then(function (r) {
      $("live-msg").textContent = r.ok ? "Still taken." : r.status === 404 ? "Stills are not available on this camera." : detail(r);
      if (r.ok) { loadLatest(); loadDays(); }
    });
  });
  loadLatest();
  loadDays();

  /* ------------------------------------------------------------------ controls */
  var pending = null, timer = null, touched = 0, described = {}, updaters = {};
  var GROUPS = { exposure: "Exposure", white_balance: "White balance", focus: "Focus", image: "Image", hdr: "HDR",
    roi: "Region of interest", lens: "Lens", day_night: "Day/night", other: "Other" };

  /* Gain-like controls (1 = unchanged, 0 = none, up to 16 or 32: contrast, saturation, sharpness) get a
     slider centred on 1: its left half is 0..1 linear, its right half 1..max logarithmic, so 0..2 is
     the left 50% + log(2)/log(max) of the right half instead of the first 6% of a linear 0..32. */
  var STEPS = 1000;
  function centred(c) { return c.type === "float" && c["default"] === 1 && c.min === 0 && c.max > 4; }
  function toSlider(c, v) {
    if (!centred(c)) return v;
    if (v <= 1) return Math.round(STEPS / 2 * Math.max(v, 0));
    return Math.round(STEPS / 2 * (1 + Math.log(Math.min(v, c.max)) / Math.log(c.max)));
  }
  function fromSlider(c, p) {
    if (!centred(c)) return p;
    var half = STEPS / 2, v = p <= half ? p / half : Math.pow(c.max, (p - half) / half);
    return Math.round(v * 100) / 100;
  }
  function send() {
    var patch = pending; pending = null;
    api("PATCH", "/v1/camera/controls", patch).then(function (r) {
      $("ctl-msg").textContent = r.ok ? "" : detail(r);
      if (!r.ok) { loadControls(); return; }
      /* show what the change implied in the other controls (roi <-> zoom, ae_enable...), without
         touching the ones being changed: a slider being dragged keeps its place */
      var all = (r.data && r.data.controls) || {};
      Object.keys(all).forEach(function (name) {
        if (!(name in patch) && !(pending && name in pending) && updaters[name]) updaters[name](all[name]);
      });
      described = all;
    });
  }
  function change(name, value) {
    touched = Date.now();
    pending = pending || {};
    pending[name] = value;
    clearTimeout(timer);
    timer = setTimeout(send, 250);
  }
  function control(name, c) {
    var row = el("div", { "class": "ctl", id: "ctl-" + name, title: c.description || "" });
    var id = "c-" + name, title = name === "roi" ? "region (x, y, width, height)" : name.replace(/_/g, " ");
    var label = el("label", { "for": c.type === "rect" ? id + "-x" : id }, title + (c.unit ? " (" + c.unit + ")" : ""));
    var input;
    if (c.type === "bool") {
      row.className += " bool";
      input = el("input", { type: "checkbox", id: id, name: name });
      input.checked = !!c.value;
      input.addEventListener("change", function () { change(name, input.checked); });
      updaters[name] = function (n) { input.checked = !!n.value; };
      row.appendChild(input); row.appendChild(label);
      return row;
    }
    row.appendChild(label);
    if (c.type === "rect") {
      row.className += " rect";
      var rect = (c.value || c.default || [0, 0, 1, 1]).slice(), fields = el("div", { "class": "rect-fields", id: id });
      ["x", "y", "w", "h"].forEach(function (axis, i) {
        var f = el("input", { type: "number", min: 0, max: 1, step: 0.01, name: name + "-" + axis, id: id + "-" + axis,
          "aria-label": name + " " + axis, title: axis + " (0..1 of the picture)" });
        f.value = rect[i];
        f.addEventListener("change", function () {
          var val = parseFloat(f.value);
          if (isNaN(val)) return;
          rect[i] = val;
          change(name, rect.slice());
        });
        var cell = el("label", null, axis + " ");
        cell.appendChild(f);
        fields.appendChild(cell);
      });
      updaters[name] = function (n) {
        rect = (n.value || n.default || [0, 0, 1, 1]).slice();
        fields.querySelectorAll("input").forEach(function (f, i) { f.value = rect[i]; });
      };
      row.appendChild(el("output", { "for": id }));
      row.appendChild(fields);
      return row;
    }
    if (c.type === "enum" && c.choices) {
      input = el("select", { id: id, name: name });
      c.choices.forEach(function (ch) { input.appendChild(el("option", { value: ch }, ch)); });
      input.value = c.value;
      input.addEventListener("change", function () { change(name, input.value); });
      updaters[name] = function (n) { input.value = n.value; };
      row.appendChild(el("output", { "for": id }));
    } else {
      var isInt = c.type === "int", v = c.value != null ? c.value : c.default != null ? c.default : c.min;
      input = centred(c)
        ? el("input", { type: "range", id: id, name: name, min: 0, max: STEPS, step: 1, "data-scale": "centred" })
        : el("input", { type: "range", id: id, name: name, min: c.min, max: c.max, step: isInt ? 1 : "any" });
      input.value = toSlider(c, v);
      var out = el("output", { "for": id }, c.value == null ? "auto" : fmt(+c.value, 2));
      input.addEventListener("input", function () {
        var val = isInt ? parseInt(input.value, 10) : fromSlider(c, parseFloat(input.value));
        out.textContent = fmt(val, 2);
        change(name, val);
      });
      updaters[name] = function (n) {
        input.value = toSlider(c, n.value != null ? n.value : n.default != null ? n.default : c.min);
        out.textContent = n.value == null ? "auto" : fmt(+n.value, 2);
      };
      row.appendChild(out);
    }
    row.appendChild(input);
    return row;
  }
  function loadControls() {
    api("GET", "/v1/camera/controls").then(function (r) {
      var root = $("controls");
      if (!r.ok) { root.textContent = detail(r); return; }
      var groups = {}, all = r.data.controls || {};
      described = all;
      Object.keys(all).forEach(function (name) {
        var c = all[name];
        if (!c.supported) return;
        var ok = c.type === "bool" || (c.type === "enum" && c.choices) || c.type === "rect" ||
          ((c.type === "int" || c.type === "float") && typeof c.min === "number" && typeof c.max === "number");
        if (!ok) return;
        (groups[c.group || "other"] = groups[c.group || "other"] || []).push(control(name, c));
      });
      root.textContent = "";
      Object.keys(groups).forEach(function (g) {
        var fs = el("fieldset");
        fs.appendChild(el("legend", null, GROUPS[g] || g.replace(/_/g, " ")));
        groups[g].forEach(function (row) { fs.appendChild(row); });
        root.appendChild(fs);
      });
    });
  }
  /* Reset: every supported control back to the default GET /v1/camera/controls gives, in one PATCH
     (all or nothing). Derived controls are left out (zoom follows roi, focus_distance lens_position), and
     so are controls whose default is null ("what the camera chose") and actions. */
  $("ctl-reset").addEventListener("click", function () {
    var patch = {};
    Object.keys(described).forEach(function (name) {
      var c = described[name];
      if (!c.supported || c.type === "action" || c.default == null) return;
      if (name === "zoom" || name === "focus_distance") return;
      patch[name] = c.default;
    });
    clearTimeout(timer); pending = null;
    api("PATCH", "/v1/camera/controls", patch).then(function (r) {
      $("ctl-msg").textContent = r.ok ? "" : detail(r);
      $("ctl-done").textContent = r.ok ? "Controls reset to their defaults." : "";
      loadControls();
    });
  });
  loadControls();
})();
