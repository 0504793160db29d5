// Times Explore in headless Chromium against a running, filled server (benches/http/explore.sh):
// pressing Enter in the query box until the first page of rows is on screen, and scrolling
// until 1,000 rows are loaded.
//   node explore_timing.mjs <base-url> <email> <password> <project-id>
import { chromium } from "playwright-core";

const [base, email, password, project] = process.argv.slice(2);
const login = await fetch(`${base}/api/v1/auth/login`, {
  method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ email, password }),
});
const { token } = await login.json();
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
await page.addInitScript((t) => sessionStorage.setItem("ledger.token", t), token);
await page.goto(`${base}/ui/projects/${project}/explore`);
await page.waitForSelector("#results .log");
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const times = [];
const rows = [];
for (const q of ["", "timed out", "level:error", "\"connection refused\"", "", "service:billing", "timed out"]) {
  await page.fill("#query", q);
  const t0 = Date.now();
  await page.press("#query", "Enter");
  // Done when the first page is on screen, or the page says nothing matched.
  await page.waitForFunction(() => {
    const more = document.getElementById("more").textContent;
    return (document.querySelectorAll("#results .log").length > 0 && !more.startsWith("Loading"))
      || more === "No logs match.";
  });
  times.push(Date.now() - t0);
  rows.push(await page.locator("#results .log").count());
}
console.log(`enter → first page on screen (ms): ${times.join(", ")}; median ${median(times)}, max ${Math.max(...times)} (rows shown: ${rows.join(", ")})`);
await page.fill("#query", "");
await page.press("#query", "Enter");
await page.waitForSelector("#results .log");
const t0 = Date.now();
while ((await page.locator("#results .log").count()) < 1000) {
  await page.mouse.wheel(0, 20000);
  await page.waitForTimeout(20);
  if (Date.now() - t0 > 60_000) throw new Error("1,000 rows did not load within 60 s");
}
const loaded = Date.now() - t0;
// Frame times while scrolling through the 1,000 rows.
const frames = await page.evaluate(async () => {
  window.scrollTo(0, 0);
  const gaps = [];
  let last = performance.now();
  for (let i = 0; i < 120; i++) {
    window.scrollBy(0, 250);
    await new Promise((r) => requestAnimationFrame(r));
    const now = performance.now();
    gaps.push(now - last);
    last = now;
  }
  gaps.sort((a, b) => a - b);
  return { p50: gaps[60], p95: gaps[114], max: gaps[119] };
});
console.log(`1,000 rows loaded by scrolling in ${loaded} ms; scrolling them: frame p50 ${frames.p50.toFixed(1)} ms, p95 ${frames.p95.toFixed(1)} ms, max ${frames.max.toFixed(1)} ms`);
await browser.close();
