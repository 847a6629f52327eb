// The browser side of edgesession's passkeys: navigator.credentials.create
// and .get with the server's options, and their results posted back as
// JSON. WebAuthn takes and gives ArrayBuffers; the server speaks base64url.
"use strict";
(function () {
  function toBuffer(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function toBase64url(buf) {
    const bytes = new Uint8Array(buf);
    let bin = "";
    for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function descriptors(list) {
    return (list || []).map(function (d) { return Object.assign({}, d, { id: toBuffer(d.id) }); });
  }
  function credentialJSON(cred) {
    const r = cred.response;
    const response = { clientDataJSON: toBase64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toBase64url(r.attestationObject);
      if (r.getTransports) response.transports = r.getTransports();
    } else {
      response.authenticatorData = toBase64url(r.authenticatorData);
      response.signature = toBase64url(r.signature);
      if (r.userHandle) response.userHandle = toBase64url(r.userHandle);
    }
    return {
      id: cred.id,
      rawId: toBase64url(cred.rawId),
      type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: response,
    };
  }
  async function answer(resp) {
    let body = {};
    try { body = await resp.json(); } catch (e) { /* not JSON */ }
    if (!resp.ok) throw new Error(body.error || ("status " + resp.status));
    return body;
  }
  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body),
    }).then(answer);
  }
  function getOptions(url) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } }).then(answer);
  }
  // assert runs navigator.credentials.get with the options at url and
  // posts the result there.
  async function assert(url, redirect) {
    const options = await getOptions(url);
    const pk = options.publicKey;
    pk.challenge = toBuffer(pk.challenge);
    pk.allowCredentials = descriptors(pk.allowCredentials);
    const cred = await navigator.credentials.get({ publicKey: pk });
    return post(url, { credential: credentialJSON(cred), redirect: redirect });
  }
  async function register(url, password, name) {
    const options = await post(url, { password: password });
    const pk = options.publicKey;
    pk.challenge = toBuffer(pk.challenge);
    pk.user.id = toBuffer(pk.user.id);
    pk.excludeCredentials = descriptors(pk.excludeCredentials);
    const cred = await navigator.credentials.create({ publicKey: pk });
    return post(url, { credential: credentialJSON(cred), name: name });
  }
  function say(el, text) {
    if (!el) return;
    el.textContent = text;
    el.hidden = false;
  }
  function failure(e) {
    if (e && e.name === "NotAllowedError") return "The passkey was not used (cancelled or timed out).";
    if (e && e.name === "InvalidStateError") return "This authenticator already holds a passkey for this site.";
    return "The passkey did not work: " + (e && e.message ? e.message : e);
  }
  function wire() {
    if (!window.PublicKeyCredential) {
      document.querySelectorAll("[data-passkey-login],[data-passkey-verify],[data-passkey-register]").forEach(function (el) {
        el.hidden = true;
      });
      return;
    }
    document.querySelectorAll("[data-passkey-login],[data-passkey-verify]").forEach(function (btn) {
      btn.hidden = false;
      btn.addEventListener("click", async function () {
        const error = document.getElementById(btn.dataset.passkeyError || "passkey-error");
        btn.disabled = true;
        try {
          const url = btn.dataset.passkeyLogin || btn.dataset.passkeyVerify;
          const done = await assert(url, btn.dataset.redirect || "");
          window.location.assign(done.redirect || "/");
        } catch (e) {
          say(error, failure(e));
          btn.disabled = false;
        }
      });
    });
    document.querySelectorAll("form[data-passkey-register]").forEach(function (form) {
      form.hidden = false;
      form.addEventListener("submit", async function (ev) {
        ev.preventDefault();
        const error = document.getElementById(form.dataset.passkeyError || "passkey-error");
        const button = form.querySelector("button");
        button.disabled = true;
        try {
          await register(form.dataset.passkeyRegister, form.elements.password.value, form.elements.name.value);
          window.location.assign(form.dataset.done);
        } catch (e) {
          say(error, failure(e));
          button.disabled = false;
        }
      });
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wire);
  else wire();
})();
