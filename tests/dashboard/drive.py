#!/usr/bin/env python3
"""Drives the coordinator dashboard in headless Chromium (selenium), step by step with the Rust
test that owns the farm: it prints `STEP name [arg]` and waits for `GO` on stdin before going on,
so the farm changes (agents start, a campaign is submitted, an agent or the leader is killed)
while a page is open. Screenshots of every page go to --out. Ends with `PASS`, or raises."""

import argparse
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

p = argparse.ArgumentParser()
p.add_argument("--leader", required=True, help="the leader's dashboard URL")
p.add_argument("--follower", required=True, help="a follower's dashboard URL")
p.add_argument("--token", required=True)
p.add_argument("--campaign", required=True)
p.add_argument("--failing", required=True)
p.add_argument("--agent", required=True, help="the agent the test kills")
p.add_argument("--out", required=True)
args = p.parse_args()
os.makedirs(args.out, exist_ok=True)


def step(name, *extra):
    print("STEP", name, *extra, flush=True)
    answer = sys.stdin.readline().strip()
    if answer != "GO":
        raise SystemExit(f"the test answered {answer!r} to step {name}")


def browser(width, height):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 f"--window-size={width},{height}"]:
        options.add_argument(flag)
    # The farm's CA is not the browser's; the test checks the certificate with curl instead.
    options.accept_insecure_certs = True
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


driver = browser(1280, 900)


def shot(name):
    driver.save_screenshot(os.path.join(args.out, f"{name}.png"))


def wait(what, condition, seconds=120):
    try:
        return WebDriverWait(driver, seconds, poll_frequency=0.25).until(lambda d: condition())
    except Exception:
        shot(f"timeout-{what}")
        raise SystemExit(f"timed out waiting for {what}; page:\n{driver.find_element(By.TAG_NAME, 'main').text}")


def attr(css, name):
    # Read in one script: a live update may replace the element between a find and a read.
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.getAttribute(arguments[1]) : null;",
        css, name)


# Campaign page: running, then every domain done with its new digest, without a reload.
driver.get(f"{args.leader}/campaigns/{args.campaign}?token={args.token}")
assert "token=" not in driver.current_url, driver.current_url
wait("the campaign page", lambda: attr("#campaign-state", "data-state") is not None, 30)
assert attr("#campaign-state", "data-state") == "running", driver.page_source
domains = driver.find_elements(By.CSS_SELECTOR, "tr.domain")
assert domains and all(d.get_attribute("data-state") == "queued" for d in domains), \
    [d.get_attribute("data-state") for d in domains]
driver.execute_script("window.notReloaded = true;")
shot("campaign-running")
step("start-agents")
wait("the campaign to finish", lambda: attr("#campaign-state", "data-state") != "running", 600)
assert attr("#campaign-state", "data-state") == "succeeded", driver.find_element(By.TAG_NAME, "main").text
assert driver.execute_script("return window.notReloaded === true;"), "the page was reloaded"
assert int(attr("#live", "data-updates") or 0) > 0, "no live update arrived"
rows = driver.find_elements(By.CSS_SELECTOR, "tr.domain")
for row in rows:
    assert row.get_attribute("data-state") == "succeeded", row.text
    assert "@sha256:" in row.find_element(By.CSS_SELECTOR, ".new-image").text, row.text
print("DOMAINS", ";".join(
    r.get_attribute("data-domain") + "=" + r.find_element(By.CSS_SELECTOR, ".new-image").text.lstrip("→ ")
    for r in rows), flush=True)
shot("campaign-done")
driver.set_window_size(390, 844)
shot("campaign-phone")
assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1;"), \
    "the page scrolls sideways on a phone-width screen"
driver.set_window_size(1280, 900)

# A failing campaign: the reason on top, the job and its log one click away.
step("submit-failing")
driver.get(f"{args.leader}/campaigns/{args.failing}")
wait("the failure", lambda: driver.find_elements(By.CSS_SELECTOR, ".failure a"), 300)
shot("campaign-failed")
reason = driver.find_element(By.CSS_SELECTOR, ".failure .reason").text
assert reason.strip(), "a failure without its reason"
driver.find_element(By.CSS_SELECTOR, ".failure a").click()
wait("the failed job's page", lambda: attr("#job-state", "data-state") == "failed", 30)
log = driver.find_element(By.ID, "log").text
assert "error:" in log, log
assert reason.strip()[:40] in driver.find_element(By.TAG_NAME, "main").text
shot("job-failed")

# Jobs list, filtered.
driver.get(f"{args.leader}/jobs?state=succeeded&campaign={args.campaign}")
states = driver.execute_script(
    "return Array.from(document.querySelectorAll('tr.job')).map(r => r.dataset.state);")
assert states and all(s == "succeeded" for s in states), states
shot("jobs")

# Agents: the killed agent shows down.
driver.get(f"{args.leader}/agents")
wait("the agent up", lambda: attr(f'tr.agent[data-agent="{args.agent}"]', "data-up") == "true", 30)
shot("agents")
step("kill-agent", args.agent)
wait("the agent down", lambda: attr(f'tr.agent[data-agent="{args.agent}"]', "data-up") == "false", 60)
shot("agent-down")

# Cluster, seen from a follower: the leader changes when it is killed.
driver.get(f"{args.follower}/agents?token={args.token}")
# A follower asks the leader for the agents (heartbeats live in the leader's memory).
wait("the agents from a follower", lambda: attr('tr.agent[data-agent="agent-1"]', "data-up") == "true", 30)
driver.get(f"{args.follower}/cluster")
wait("the cluster page", lambda: attr("#leader", "data-leader") not in (None, "0"), 30)
old = attr("#leader", "data-leader")
shot("cluster")
step("kill-leader", old)
wait("a new leader", lambda: attr("#leader", "data-leader") not in (None, "0", old), 60)
shot("cluster-new-leader")
driver.quit()
print("PASS", flush=True)
