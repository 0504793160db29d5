// End-to-end test of the web console in a real headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core). Run by server/tests/console.rs against the real binary:
//
//   node e2e.mjs <base-url> <screenshot-dir>
//
// A person registers, creates a project and a key, sends logs through the API, finds one by
// query, opens it, sees the chart, narrows the range by dragging, watches a new log arrive by
// live tail, reads the errors page, revokes the key and signs out. A log message of
// `<img src=x onerror=alert(1)>` must show as those characters and run nothing. Screenshots
// of Explore, Errors and the key page go to <screenshot-dir> (docs/screenshots/).
import { chromium } from "playwright-core";
import assert from "node:assert/strict";

const [base, shots] = process.argv.slice(2);
const XSS = "<img src=x onerror=alert(1)>";
const step = (s) => console.log(`-- ${s}`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const problems = [];
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on("console", (m) => {
    // A refused request (the bad query's 400) is logged as a failed load: not a problem.
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) {
      problems.push(`console error: ${m.text()}`);
    }
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("dialog", async (d) => {
    if (d.type() === "confirm") return d.accept();
    problems.push(`unexpected ${d.type()} dialog: ${d.message()}`);
    await d.dismiss();
  });

  step("a browser at / gets the console, and signs up");
  const first = await page.goto(`${base}/`);
  assert.equal(first.status(), 200);
  const csp = first.headers()["content-security-policy"];
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  await page.waitForURL(/\/ui\/signin$/);
  await page.click("text=Create one");
  await page.fill("#email", "newcomer@example.com");
  await page.fill("#password", "correct horse battery");
  await page.click("button[type=submit]");
  await page.waitForURL(/\/ui\/projects$/);

  step("creates a project and a key; the key and a curl line are shown once");
  await page.fill("#project-name", "shop");
  await page.click("text=Create project");
  await page.waitForURL(/\/ui\/projects\/[0-9a-f]{16}\/keys$/);
  const projectId = page.url().match(/projects\/([0-9a-f]{16})/)[1];
  await page.fill("#key-name", "checkout-service");
  await page.click("text=Create key");
  const key = (await page.textContent("#key-secret")).trim();
  assert.match(key, /^ledger_[A-Za-z0-9]{32}$/);
  const curl = await page.textContent("#curl-line");
  assert.ok(curl.includes(key) && curl.includes("/api/v1/ingest/single"), curl);
  await page.screenshot({ path: `${shots}/console-keys.png` });

  step("logs sent through the API, the XSS message among them");
  const now = Date.now();
  const logs = [];
  for (let i = 0; i < 60; i++) {
    const level = i % 10 === 0 ? "error" : i % 7 === 0 ? "warning" : "info";
    const log = {
      timestamp: new Date(now - (60 - i) * 20_000).toISOString(), level, log_type: "logger",
      importance: "standard", service: i % 2 ? "checkout" : "billing", environment: "prod",
      message: level === "error" ? `payment declined for order ${1000 + i}` : `checkout step ${i} done`,
      attributes: { order_id: 1000 + i },
    };
    if (level === "error") Object.assign(log, { error_type: "PaymentDeclined", error_message: `card declined for order ${1000 + i}` });
    logs.push(log);
  }
  logs.push({ timestamp: new Date(now - 5_000).toISOString(), level: "warning", log_type: "logger",
    importance: "high", service: "web", message: XSS });
  const sent = await fetch(`${base}/api/v1/ingest/batch`, {
    method: "POST", headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify({ logs }),
  });
  assert.equal(sent.status, 202);
  const { ids } = await sent.json();
  await new Promise((r) => setTimeout(r, 1500)); // search sees logs within its refresh interval

  step("Explore: newest first, chart, a query finds a log, its JSON opens");
  await page.click("text=Explore");
  await page.waitForSelector("#results .log");
  assert.equal(await page.locator("#results .log").count(), 61);
  await page.waitForSelector("#volume rect");
  await page.fill("#query", "declined order");
  await page.press("#query", "Enter");
  await page.waitForFunction(() => document.querySelectorAll("#results .log").length === 6);
  assert.match(page.url(), /q=declined\+order/);
  await page.click("#results .log .line >> nth=0");
  const json = await page.textContent("#results .log pre");
  assert.ok(json.includes(ids[50]) && json.includes("PaymentDeclined"), json);

  step("a bad query shows where it is wrong");
  await page.fill("#query", 'level:error AND "unclosed');
  await page.press("#query", "Enter");
  await page.waitForSelector("#query-error .caret");
  assert.match(await page.textContent("#query-error"), /position/);

  step("log text is text: the XSS message shows its characters and runs nothing");
  await page.fill("#query", "");
  await page.check("#level-warning");
  await page.waitForFunction(() => [...document.querySelectorAll("#results .msg")]
    .some((m) => m.textContent === "<img src=x onerror=alert(1)>"));
  assert.equal(await page.locator("#results img").count(), 0);
  await page.uncheck("#level-warning");

  step("the URL holds Explore's state: a shared link opens the same view");
  const shared = `${base}/ui/projects/${projectId}/explore?q=declined&level=error&range=24h`;
  await page.goto(shared);
  await page.waitForFunction(() => document.querySelectorAll("#results .log").length === 6);
  assert.equal(await page.inputValue("#query"), "declined");
  assert.ok(await page.isChecked("#level-error"));
  assert.equal(await page.inputValue("#range"), "24h");

  step("dragging across the chart narrows the range");
  await page.goto(`${base}/ui/projects/${projectId}/explore?range=1h`);
  await page.waitForSelector("#volume rect");
  const box = await page.locator("#volume").boundingBox();
  // The last ~12 minutes of the hour: about half of the logs (sent over the last 20).
  await page.mouse.move(box.x + box.width * 0.8, box.y + 30);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.99, box.y + 30, { steps: 5 });
  await page.mouse.up();
  await page.waitForURL(/range=custom/);
  await page.waitForFunction(() => {
    const n = document.querySelectorAll("#results .log").length;
    return n > 0 && n < 61;
  });
  await page.goto(`${base}/ui/projects/${projectId}/explore?range=1h`);
  await page.waitForSelector("#results .log");
  await page.screenshot({ path: `${shots}/console-explore.png` });

  step("live tail: a new log appears without reloading");
  await page.click("#live");
  await new Promise((r) => setTimeout(r, 500));
  const liveSent = await fetch(`${base}/api/v1/ingest/single`, {
    method: "POST", headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify({ timestamp: new Date().toISOString(), level: "info", log_type: "logger",
      importance: "standard", service: "checkout", message: "arrived live" }),
  });
  assert.equal(liveSent.status, 202);
  await page.waitForSelector("#results .log.fresh >> text=arrived live", { timeout: 5_000 });
  await page.click("#live");

  step("errors: top errors with counts and a sample log");
  await page.click("text=Errors");
  await page.waitForSelector("#errors");
  const errors = await page.textContent("#errors");
  assert.ok(errors.includes("PaymentDeclined") && errors.includes("6"), errors);
  await page.screenshot({ path: `${shots}/console-errors.png` });
  await page.click("#errors >> text=sample log");
  await page.waitForSelector("#log-json");
  assert.match(await page.textContent("#log-json"), /PaymentDeclined/);

  step("patterns and usage");
  await page.click("text=Patterns");
  await page.waitForSelector("#patterns");
  assert.match(await page.textContent("#patterns"), /checkout step <\*> done/);
  await page.click("text=Usage");
  await page.waitForSelector("#usage-today");
  assert.match(await page.textContent("#usage-today"), /62 of 1,000,000 logs/);

  step("revoking the key refuses it from the next request");
  await page.click("text=API keys");
  await page.click("[data-revoke=checkout-service]");
  await page.waitForSelector("text=revoked");
  const refused = await fetch(`${base}/api/v1/ingest/single`, {
    method: "POST", headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: "{}",
  });
  assert.equal(refused.status, 401);

  step("signing out clears the session");
  await page.click("#signout");
  await page.waitForURL(/\/ui\/signin$/);
  assert.equal(await page.evaluate(() => sessionStorage.getItem("ledger.token")), null);
  await page.goto(`${base}/ui/projects`);
  await page.waitForURL(/\/ui\/signin$/);

  assert.deepEqual(problems, []);
  console.log("ok");
} catch (e) {
  console.error(e);
  if (problems.length) console.error(problems.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
}
