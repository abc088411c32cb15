/* frontdesk web chat widget. Paste into a page:
 *   <script src="https://YOUR-FRONTDESK/widget.js?practice=SLUG" async></script>
 * Self-contained (no dependencies), styles isolated in a shadow root, keyboard and
 * screen-reader friendly. */
(function () {
  "use strict";
  var config = __FRONTDESK_CONFIG__;
  if (window.__frontdeskChat) return;
  window.__frontdeskChat = true;

  var words = {
    en: { open: "Chat with us", close: "Close chat", send: "Send", label: "Your message",
          joined: "A person from the practice has joined the chat.", slow: "Please wait a moment before sending more.",
          failed: "Your message could not be sent. Please try again.", you: "You", staff: "Staff", bot: "Assistant" },
    es: { open: "Escríbanos", close: "Cerrar chat", send: "Enviar", label: "Su mensaje",
          joined: "Una persona de la consulta se ha unido al chat.", slow: "Espere un momento antes de enviar más.",
          failed: "No se pudo enviar su mensaje. Inténtelo de nuevo.", you: "Usted", staff: "Personal", bot: "Asistente" }
  }[config.language] || null;
  if (!words) words = { open: "Chat with us" };

  function luminance(hex) {
    var c = [1, 3, 5].map(function (i) {
      var v = parseInt(hex.substr(i, 2), 16) / 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  }
  // Text on the practice's colour: white or near-black, whichever has the better contrast
  // (WCAG AA needs 4.5:1 for body text).
  var L = luminance(config.color);
  var ink = (1.05 / (L + 0.05)) >= ((L + 0.05) / 0.05) ? "#ffffff" : "#111111";

  var api = config.base + "/widget/api/" + encodeURIComponent(config.practice);
  var storageKey = "frontdesk-chat-" + config.practice;
  var token = null;
  var lastId = 0;
  var source = null;

  var host = document.createElement("div");
  host.id = "frontdesk-chat";
  document.body.appendChild(host);
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  root.innerHTML =
    '<style>' +
    ':host, .wrap { all: initial; }' +
    '.wrap { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000; font: 15px/1.45 system-ui, sans-serif; color: #111; }' +
    'button { font: inherit; cursor: pointer; }' +
    '.launcher { background: ' + config.color + '; color: ' + ink + '; border: 0; border-radius: 999px; padding: 12px 18px; box-shadow: 0 2px 8px rgba(0,0,0,.25); }' +
    '.launcher:focus-visible, .close:focus-visible, .send:focus-visible, textarea:focus-visible { outline: 3px solid #1a56db; outline-offset: 2px; }' +
    '.panel { display: none; width: 340px; max-width: calc(100vw - 40px); height: 480px; max-height: calc(100vh - 40px); background: #fff; border: 1px solid #ccc; border-radius: 12px; box-shadow: 0 6px 24px rgba(0,0,0,.25); flex-direction: column; overflow: hidden; }' +
    '.panel.open { display: flex; }' +
    '.head { background: ' + config.color + '; color: ' + ink + '; padding: 10px 14px; display: flex; justify-content: space-between; align-items: center; }' +
    '.head h2 { font-size: 16px; margin: 0; }' +
    '.close { background: transparent; color: ' + ink + '; border: 0; font-size: 20px; line-height: 1; padding: 4px 8px; }' +
    '.log { flex: 1; overflow-y: auto; padding: 10px; background: #f6f7f9; }' +
    '.m { margin: 6px 0; padding: 8px 10px; border-radius: 10px; max-width: 85%; white-space: pre-wrap; word-wrap: break-word; }' +
    '.m.visitor { background: #1f3b57; color: #fff; margin-left: auto; }' +
    '.m.assistant, .m.staff { background: #fff; border: 1px solid #d5d9de; }' +
    '.m.crisis { background: #fff4f2; border: 2px solid #b42318; color: #111; font-weight: 600; }' +
    '.who { display: block; font-size: 12px; color: #44505c; margin-bottom: 2px; }' +
    '.m.visitor .who { color: #dfe7ef; }' +
    '.note { text-align: center; font-size: 13px; color: #1d4d2b; background: #e7f6ea; border-radius: 8px; padding: 6px; margin: 6px 0; }' +
    '.error { color: #b42318; font-size: 13px; padding: 4px 10px; min-height: 1em; }' +
    'form { display: flex; gap: 6px; padding: 8px; border-top: 1px solid #ddd; background: #fff; }' +
    'textarea { flex: 1; font: inherit; resize: none; height: 44px; padding: 6px; border: 1px solid #767676; border-radius: 8px; color: #111; }' +
    '.send { background: ' + config.color + '; color: ' + ink + '; border: 0; border-radius: 8px; padding: 0 14px; }' +
    '.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }' +
    '</style>' +
    '<div class="wrap">' +
    '<button class="launcher" type="button" aria-haspopup="dialog" aria-expanded="false"></button>' +
    '<div class="panel" role="dialog" aria-modal="false" aria-labelledby="fd-title">' +
    '<div class="head"><h2 id="fd-title"></h2><button class="close" type="button">×</button></div>' +
    '<div class="log" role="log" aria-live="polite" aria-relevant="additions"></div>' +
    '<div class="error" role="status"></div>' +
    '<form><label class="sr" for="fd-input"></label><textarea id="fd-input"></textarea>' +
    '<button class="send" type="submit"></button></form>' +
    '</div></div>';

  var launcher = root.querySelector(".launcher");
  var panel = root.querySelector(".panel");
  var log = root.querySelector(".log");
  var error = root.querySelector(".error");
  var form = root.querySelector("form");
  var input = root.querySelector("textarea");
  var closeButton = root.querySelector(".close");
  launcher.textContent = words.open;
  root.querySelector("#fd-title").textContent = config.title;
  root.querySelector("label").textContent = words.label;
  root.querySelector(".send").textContent = words.send;
  closeButton.setAttribute("aria-label", words.close);

  function show(message) {
    if (message.id <= lastId) return;
    lastId = message.id;
    var div = document.createElement("div");
    div.className = "m " + message.from + (message.crisis ? " crisis" : "");
    div.setAttribute("data-id", message.id);
    if (message.crisis) div.setAttribute("role", "alert");
    var who = document.createElement("span");
    who.className = "who";
    who.textContent = message.from === "visitor" ? words.you : message.from === "staff" ? words.staff : words.bot;
    div.appendChild(who);
    div.appendChild(document.createTextNode(message.text));
    log.appendChild(div);
    log.scrollTop = log.scrollHeight;
  }

  function state(data) {
    if (data.person_joined && !root.querySelector(".note.joined")) {
      var note = document.createElement("div");
      note.className = "note joined";
      note.textContent = words.joined;
      log.appendChild(note);
    }
  }

  function listen() {
    if (source) source.close();
    source = new EventSource(api + "/events?token=" + encodeURIComponent(token) + "&after=" + lastId);
    source.addEventListener("message", function (e) { show(JSON.parse(e.data)); });
    source.addEventListener("state", function (e) { state(JSON.parse(e.data)); });
  }

  function begin() {
    return fetch(api + "/sessions", { method: "POST" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        token = data.token;
        try { localStorage.setItem(storageKey, token); } catch (e) {}
        data.messages.forEach(show);
        listen();
      });
  }

  function resume() {
    try { token = localStorage.getItem(storageKey); } catch (e) { token = null; }
    if (!token) return begin();
    return fetch(api + "/messages?token=" + encodeURIComponent(token))
      .then(function (r) {
        if (r.status === 404) { token = null; return begin(); }
        return r.json().then(function (data) { data.messages.forEach(show); state(data); listen(); });
      });
  }

  var started = null;
  function open() {
    panel.classList.add("open");
    launcher.setAttribute("aria-expanded", "true");
    launcher.style.display = "none";
    if (!started) started = resume();
    input.focus();
  }
  function close() {
    panel.classList.remove("open");
    launcher.setAttribute("aria-expanded", "false");
    launcher.style.display = "";
    launcher.focus();
  }
  launcher.addEventListener("click", open);
  closeButton.addEventListener("click", close);
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape") close(); });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit ? form.requestSubmit() : form.submit(); }
  });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text || !token) return;
    error.textContent = "";
    fetch(api + "/messages", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token: token, text: text })
    }).then(function (r) {
      if (r.status === 429) { error.textContent = words.slow; return; }
      if (!r.ok) { error.textContent = words.failed; return; }
      input.value = "";
    }).catch(function () { error.textContent = words.failed; });
  });
  // A returning visitor's chat reopens where it was.
  try { if (localStorage.getItem(storageKey)) open(); } catch (e) {}
})();
