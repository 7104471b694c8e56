// Package browsertest holds the join page's tests in real browsers:
// Debian's headless Chromium driven with chromedp, and Firefox ESR driven
// over WebDriver BiDi by puppeteer-core (run with node). A Plenum server
// runs in the test with Mumble clients of package client beside the
// browsers. The tests skip, saying why, when a browser is missing;
// scripts/test installs both. It has only tests.
package browsertest
