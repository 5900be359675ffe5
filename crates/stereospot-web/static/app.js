// StereoSpot's page behaviour: upload to the presigned URL with a progress bar, live progress
// over SSE with an ETA countdown, confirmations, the 3D player launch, and Web Push opt-in.
// Every page works without this script (except uploading, which needs it).
(function () {
  'use strict';
  const $ = (sel, root) => (root || document).querySelector(sel);

  function durationText(secs) {
    const h = Math.floor(secs / 3600), m = Math.floor(secs / 60) % 60, s = secs % 60;
    if (h > 0) return h + ' h ' + m + ' min';
    if (m > 0) return m + ' min ' + s + ' s';
    return s + ' s';
  }

  // ETA countdown: the server sends seconds left; we count down between its updates.
  let etaLeft = null;
  function showEta() {
    const el = $('#eta');
    if (!el) return;
    el.textContent = etaLeft === null ? '' :
      (etaLeft > 0 ? '· about ' + durationText(etaLeft) + ' left' : '· almost done');
  }
  function setEta(secs) {
    etaLeft = (secs === null || secs === undefined || secs === '') ? null : Math.max(0, Number(secs));
    showEta();
  }
  setInterval(() => { if (etaLeft !== null && etaLeft > 0) { etaLeft -= 1; showEta(); } }, 1000);

  // Live progress over SSE until the job reaches a terminal state; then the page is reloaded
  // so the server renders the player (or the error).
  function watchProgress() {
    const section = $('#progress-section');
    if (!section || !window.EventSource) return;
    section.hidden = false;
    const eta = $('#eta');
    if (eta && eta.dataset.eta) setEta(eta.dataset.eta);
    const es = new EventSource(section.dataset.eventsUrl);
    const apply = (ev) => {
      let job;
      try { job = JSON.parse(ev.data); } catch (e) { return; }
      const bar = $('#job-progress');
      if (bar) bar.value = job.progress_percent;
      const pct = $('#job-percent');
      if (pct) pct.textContent = job.progress_percent + '%';
      const stage = $('#stage');
      if (stage) stage.textContent = (job.status === 'created' && job.uploaded_at) ? 'Uploaded; waiting for a worker' : job.stage;
      setEta(job.eta_seconds === undefined ? null : job.eta_seconds);
      const root = $('#job');
      if (root) root.dataset.status = job.status;
    };
    es.addEventListener('status', apply);
    es.addEventListener('done', (ev) => {
      apply(ev);
      es.close();
      window.location.reload();
    });
  }

  function uploadForm() {
    const form = $('#upload-form');
    if (!form) return;
    const jobId = $('#job').dataset.jobId;
    const error = $('#upload-error');
    const fail = (msg) => {
      error.textContent = msg;
      error.hidden = false;
      $('#upload-button').disabled = false;
    };
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const file = $('#file').files[0];
      if (!file) return fail('Choose a video file first.');
      if (file.size > Number(form.dataset.maxBytes)) {
        return fail('This file is too large: the limit is ' + form.dataset.maxText + '.');
      }
      error.hidden = true;
      $('#upload-button').disabled = true;
      $('#upload-status').hidden = false;
      const bar = $('#upload-progress'), pct = $('#upload-percent');
      const show = (p) => { bar.value = p; pct.textContent = p + '%'; };
      const xhr = new XMLHttpRequest();
      xhr.open('PUT', form.dataset.uploadUrl);
      xhr.upload.addEventListener('progress', (e) => {
        if (e.lengthComputable) show(Math.floor((e.loaded / e.total) * 100));
      });
      xhr.addEventListener('load', () => {
        if (xhr.status === 413) return fail('This file is too large: the limit is ' + form.dataset.maxText + '.');
        if (xhr.status < 200 || xhr.status >= 300) return fail('The upload failed (HTTP ' + xhr.status + '). Try again.');
        show(100);
        fetch('/jobs/' + jobId, {
          method: 'PATCH',
          headers: { 'Content-Type': 'application/json', 'Accept': 'application/json' },
          body: JSON.stringify({ file_name: file.name, source_file_size_bytes: file.size, uploaded_at: Math.floor(Date.now() / 1000) }),
        }).then((r) => r.json()).then((job) => {
          if (job.title) {
            const t = $('#job-title');
            if (t) t.textContent = job.title;
          }
          $('#source').hidden = true;
          const stage = $('#stage');
          if (stage) stage.textContent = 'Uploaded; waiting for a worker';
          watchProgress();
        }).catch(() => fail('The upload finished, but the job could not be updated. Reload the page.'));
      });
      xhr.addEventListener('error', () => fail('The upload failed: the connection was lost. Try again.'));
      xhr.send(file);
    });
  }

  function confirmations() {
    document.querySelectorAll('form.js-confirm').forEach((f) => {
      f.addEventListener('submit', (ev) => {
        if (!window.confirm(f.dataset.confirm)) ev.preventDefault();
      });
    });
  }

  function launch() {
    const el = $('#launch');
    if (el && el.dataset.pot3d) {
      // Try the 3D Linker's protocol once; the page stays with the other options.
      setTimeout(() => { window.location.href = el.dataset.pot3d; }, 300);
    }
  }

  function b64urlToBytes(s) {
    const pad = '='.repeat((4 - (s.length % 4)) % 4);
    const raw = atob((s + pad).replace(/-/g, '+').replace(/_/g, '/'));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  }

  function push() {
    const button = $('#notify-button');
    if (!button || !('serviceWorker' in navigator) || !('PushManager' in window)) return;
    button.hidden = false;
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        const key = await (await fetch('/api/vapid-public-key', { headers: { Accept: 'application/json' } })).json();
        const reg = await navigator.serviceWorker.register('/sw.js');
        const sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: b64urlToBytes(key.public_key) });
        const r = await fetch('/api/push-subscriptions', {
          method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
          body: JSON.stringify(sub.toJSON()),
        });
        button.textContent = r.ok ? 'You will be notified' : 'Notifications are not available';
      } catch (e) {
        button.textContent = 'Notifications are not available';
      }
    });
  }

  document.addEventListener('DOMContentLoaded', () => {
    uploadForm();
    confirmations();
    launch();
    push();
    const section = $('#progress-section');
    if (section && !section.hidden) watchProgress();
  });
})();
