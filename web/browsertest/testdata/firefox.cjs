// firefox.cjs drives Debian's Firefox ESR over WebDriver BiDi with
// puppeteer-core for the Go tests: it starts the browser (a fake
// microphone, autoplay allowed, the language given) and then answers one
// JSON request per line on standard input with one JSON line on standard
// output: {"op":"goto","url"} opens a page, {"op":"eval","js"} evaluates
// an expression in it (awaiting a promise), {"op":"click","selector"}
// clicks an element as a user would, {"op":"shot","path","width",
// "height"} saves a screenshot. Standard input closing ends the browser.
"use strict";
const puppeteer = require("puppeteer-core");
const readline = require("readline");

async function main() {
  const [executablePath, lang] = process.argv.slice(2);
  const browser = await puppeteer.launch({
    browser: "firefox",
    executablePath,
    headless: true,
    protocol: "webDriverBiDi",
    extraPrefsFirefox: {
      "media.navigator.streams.fake": true, // a generated tone, no device
      "media.navigator.permission.disabled": true,
      "media.autoplay.default": 0,
      "media.autoplay.block-webaudio": false,
      "media.peerconnection.ice.loopback": true, // the test's server is on 127.0.0.1
      "media.peerconnection.ice.obfuscate_host_addresses": false,
      "intl.accept_languages": lang,
      "intl.locale.requested": lang,
    },
  });
  let page = (await browser.pages())[0] || (await browser.newPage());
  const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    let req;
    try {
      req = JSON.parse(line);
      let value = null;
      if (req.op === "goto") await page.goto(req.url);
      else if (req.op === "eval") value = await page.evaluate(req.js);
      else if (req.op === "click") await page.click(req.selector);
      else if (req.op === "shot") {
        await page.setViewport({ width: req.width, height: req.height });
        await page.screenshot({ path: req.path, fullPage: false });
      } else throw new Error("unknown op " + req.op);
      out({ ok: true, value: value === undefined ? null : value });
    } catch (err) {
      out({ ok: false, error: String(err && err.message || err) });
    }
  }
  await browser.close();
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack || err) + "\n");
  process.exit(1);
});
