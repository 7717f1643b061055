"""The one HTML page of ``jamsdk live``: the stream, live stats, buttons and keys (no external files)."""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>jamsdk live</title>
<style>
  body { margin: 0; background: #16181d; color: #e8e8e8; font: 15px/1.4 system-ui, sans-serif; }
  header { padding: 10px 16px; background: #22252c; display: flex; gap: 16px; align-items: baseline; }
  header h1 { font-size: 18px; margin: 0; }
  main { display: flex; gap: 16px; padding: 16px; align-items: flex-start; }
  #stream { height: 384px; max-width: calc(100vw - 330px); object-fit: contain; object-position: left top; }
  aside { min-width: 280px; }
  #fps { font-size: 28px; font-weight: 600; color: #7ee787; }
  table { border-collapse: collapse; margin: 8px 0; }
  td { padding: 1px 10px 1px 0; font-variant-numeric: tabular-nums; }
  td.ms { text-align: right; }
  button { margin: 3px 4px 3px 0; padding: 6px 10px; font: inherit; background: #2f6feb; color: #fff;
           border: 0; border-radius: 4px; cursor: pointer; }
  kbd { background: #333; border-radius: 3px; padding: 0 4px; font-size: 12px; }
  #message, #state { color: #aab; }
  #note { padding: 6px 16px; background: #5a4a12; color: #ffe8a3; }
</style>
</head>
<body>
<header><h1>jamsdk live</h1><span id="model"></span><span id="state">connecting…</span></header>
<div id="note" hidden></div>
<main>
  <img id="stream" src="/stream.mjpg" alt="animated stream">
  <aside>
    <div><span id="fps">–</span> FPS</div>
    <table id="stages"></table>
    <div id="message"></div>
    <div>
      <button data-action="reset">Reset reference <kbd>X</kbd></button>
      <button data-action="search">Find best reference <kbd>F</kbd></button><br>
      <button data-action="layout">Side by side <kbd>S</kbd></button>
      <button data-action="regions">Regions <kbd>R</kbd></button>
    </div>
  </aside>
</main>
<script>
const KEYS = {x: "reset", f: "search", s: "layout", r: "regions"};
function control(action) { fetch("/control/" + action, {method: "POST"}).then(poll); }
document.querySelectorAll("button[data-action]").forEach(b => b.onclick = () => control(b.dataset.action));
document.addEventListener("keydown", e => {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const a = KEYS[e.key.toLowerCase()];
  if (a) { e.preventDefault(); control(a); }
});
function poll() {
  fetch("/stats.json").then(r => r.json()).then(s => {
    document.getElementById("fps").textContent = s.fps === undefined ? "–" : s.fps.toFixed(1);
    const rows = Object.entries(s.ms || {}).map(([k, v]) =>
      `<tr><td>${k}</td><td class="ms">${v.toFixed(1)} ms</td></tr>`);
    document.getElementById("stages").innerHTML = rows.join("");
    document.getElementById("message").textContent = s.message || "";
    document.getElementById("model").textContent = s.model ? "model: " + s.model : "";
    const note = document.getElementById("note");
    note.textContent = s.note || "";
    note.hidden = !s.note;
    document.getElementById("state").textContent = s.frames === undefined ? "starting…" :
      `${s.driving} · ${s.backend} · ${s.mode} · ${s.layout}${s.regions ? " + regions" : ""} · frame ${s.frames}`;
  }).catch(() => { document.getElementById("state").textContent = "disconnected"; });
}
poll();
setInterval(poll, 500);
</script>
</body>
</html>
"""
