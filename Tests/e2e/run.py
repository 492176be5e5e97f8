#!/usr/bin/python3
"""End-to-end flows in headless Chromium against the release binary behind the real nginx.

Everything is done as a marketer would: clicks and typing in the pages (no HTTP calls, no database writes behind
the browser's back). Screenshots of the main pages go to e2e-screenshots/ (git-ignored). Run by `make test`.
"""
import base64, hashlib, hmac, os, re, shutil, socket, struct, subprocess, sys, tempfile, time, traceback

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(REPO, ".build/release/roster")
SHOTS = os.path.join(REPO, "e2e-screenshots")
ADMIN, PASSWORD = "admin@example.com", "e2e admin password"


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port


def totp(key, at):
    """RFC 6238 with the defaults an authenticator app uses, written here from the RFC (not from Roster's code)."""
    secret = base64.b32decode(key.replace(" ", "") + "=" * (-len(key.replace(" ", "")) % 8))
    mac = hmac.new(secret, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    offset = mac[-1] & 15
    return "%06d" % ((struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7fffffff) % 1000000)


def psql(url, query):
    return subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", url, "-c", query], check=True,
                          capture_output=True, text=True).stdout.strip()


class Server:
    """roster serve + nginx in a temporary folder on free loopback ports; with ROSTER_TEST_STORE=postgres, on a
    database of its own on the test cluster (ROSTER_TEST_POSTGRES_URL), dropped at the end."""
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="roster-e2e-")
        os.chmod(self.dir, 0o755)
        self.http, self.app = free_port(), free_port()
        self.env = dict(os.environ, ROSTER_DATA=os.path.join(self.dir, "data"), ROSTER_LISTEN=f"127.0.0.1:{self.app}",
                        ROSTER_TEMPLATES=os.path.join(REPO, "Templates"), ROSTER_ADMIN_EMAIL=ADMIN, ROSTER_ADMIN_PASSWORD=PASSWORD,
                        ROSTER_WORKERS="8", ROSTER_TASK_PAUSE_MS="400", ROSTER_PUBLIC_URL=f"http://127.0.0.1:{self.http}")
        self.cluster = self.database = None
        if os.environ.get("ROSTER_TEST_STORE") == "postgres":
            self.cluster = os.environ["ROSTER_TEST_POSTGRES_URL"]
            self.database = "e2e_" + os.urandom(4).hex()
            psql(self.cluster, f"CREATE DATABASE {self.database}")
            self.env["ROSTER_DATABASE_URL"] = self.cluster.replace("/roster?", f"/{self.database}?")
            # An import chunk ends after 50 ms of work; on PostgreSQL that is tens of rows rather than thousands (a
            # round trip per statement), so the pause that lets the flows watch a running task is shorter.
            self.env["ROSTER_TASK_PAUSE_MS"] = "20"
        subprocess.run([BIN, "bootstrap"], env=self.env, check=True, stdout=subprocess.DEVNULL)
        self.log = open(os.path.join(self.dir, "app.log"), "w")
        self.proc = subprocess.Popen([BIN, "serve"], env=self.env, stdout=self.log, stderr=self.log)
        prefix = os.path.join(self.dir, "nginx")
        subprocess.run(["bash", os.path.join(REPO, "scripts/nginx-prefix.sh"), prefix, str(self.http), f"127.0.0.1:{self.app}"], check=True, stdout=subprocess.DEVNULL)
        self.nginx = subprocess.Popen(["nginx", "-p", prefix + "/", "-c", prefix + "/nginx.conf"], cwd=prefix, stdout=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{self.http}"
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.http), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        time.sleep(0.3)

    def stop(self):
        self.proc.terminate(); self.proc.wait(10)
        self.nginx.send_signal(3); self.nginx.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.database:
            psql(self.cluster, f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")


def browser(javascript=True):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000", "--disable-gpu"]:
        options.add_argument(arg)
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.implicitly_wait(0)
    return driver


class Flow:
    def __init__(self, server, driver):
        self.s, self.d = server, driver
        self.checked_pages = 0

    # -- small helpers ------------------------------------------------------------------------------------------
    def go(self, path):
        self.d.get(self.s.base + path); self.page_checks()

    def find(self, css):
        return self.d.find_element(By.CSS_SELECTOR, css)

    def finds(self, css):
        return self.d.find_elements(By.CSS_SELECTOR, css)

    def type(self, css, text, clear=True):
        el = self.find(css)
        if clear: el.clear()
        el.send_keys(text)

    def choose(self, css, text=None, value=None):
        sel = Select(self.find(css))
        try:
            sel.select_by_value(value) if value is not None else sel.select_by_visible_text(text)
        except Exception:
            raise AssertionError(f"{css} has no option {text or value!r}; it offers {[o.text for o in sel.options]}")

    def navigated(self, action):
        """Runs a click that loads a page, and waits until the new page is there."""
        old = self.find("html")
        action()
        def gone(_):
            try:
                old.tag_name
                return False
            except Exception:   # stale, or detached mid-navigation: the old page is gone either way
                return True
        WebDriverWait(self.d, 20).until(gone)
        WebDriverWait(self.d, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")
        self.page_checks()

    def click(self, css):
        self.navigated(lambda: self.find(css).click())

    def click_text(self, tag, text, navigates=True):
        for el in self.finds(tag):
            if el.text.strip() == text:
                if navigates: self.navigated(el.click)
                else: el.click()
                return
        raise AssertionError(f"no <{tag}> with the text {text!r} on {self.d.current_url}")

    def body(self):
        return self.find("body").text

    def expect(self, text):
        assert text in self.body(), f"expected {text!r} on {self.d.current_url}:\n{self.body()[:1500]}"

    def shot(self, name):
        """The whole page, not only the window."""
        os.makedirs(SHOTS, exist_ok=True)
        height = self.d.execute_script("return Math.min(document.documentElement.scrollHeight, 5000)")
        self.d.set_window_size(1280, max(1000, height))
        self.d.save_screenshot(os.path.join(SHOTS, name + ".png"))
        self.d.set_window_size(1280, 1000)

    def wait_for(self, predicate, what, seconds=30):
        end = time.time() + seconds
        while time.time() < end:
            if predicate(): return
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what} on {self.d.current_url}:\n{self.body()[:1500]}")

    def page_checks(self):
        """Accessibility basics on every page: a title, one h1, a label for every input, status in words."""
        title = self.d.title.strip()
        assert title, f"{self.d.current_url} has no title"
        h1 = self.finds("h1")
        assert len(h1) == 1, f"{self.d.current_url} has {len(h1)} h1 elements"
        unlabeled = self.d.execute_script("""
            const out = [];
            for (const el of document.querySelectorAll('input, select, textarea')) {
              const t = (el.getAttribute('type') || '').toLowerCase();
              if (['hidden', 'submit', 'button'].includes(t)) continue;
              const byFor = el.id && document.querySelector('label[for="' + CSS.escape(el.id) + '"]');
              if (!(byFor || el.closest('label') || el.getAttribute('aria-label'))) out.push(el.name || el.id || el.outerHTML.slice(0, 60));
            }
            return out;""") if self.js else self.labels_without_js()
        assert not unlabeled, f"inputs without a label on {self.d.current_url}: {unlabeled}"
        for el in self.finds(".state, .status"):
            assert el.text.strip(), f"a status shown by colour only on {self.d.current_url}"
        self.checked_pages += 1

    def labels_without_js(self):
        missing = []
        for el in self.finds("input, select, textarea"):
            if (el.get_attribute("type") or "").lower() in ("hidden", "submit", "button"): continue
            eid = el.get_attribute("id")
            if eid and self.finds(f'label[for="{eid}"]'): continue
            if el.get_attribute("aria-label"): continue
            if el.find_elements(By.XPATH, "ancestor::label"): continue
            missing.append(el.get_attribute("name"))
        return missing

    @property
    def js(self):
        return self.d.capabilities.get("browserName") and not getattr(self, "no_js", False)

    def login(self, email, password):
        self.go("/login")
        self.type("#email", email); self.type("#password", password)
        self.click("button[type=submit]")

    def logout(self):
        self.click_text("button", "Log out")

    def choose_refresh(self, css, text=None, value=None):
        """A menu that reloads the builder (with JavaScript): wait for the new page."""
        if getattr(self, "no_js", False):
            self.choose(css, text, value)
        else:
            self.navigated(lambda: self.choose(css, text, value))

    def menu(self, link_text):
        """Opens the page's Actions menu and follows one of its links."""
        self.click_text("summary", "Actions", navigates=False)
        self.click_text("a", link_text)

    def click_confirm(self, tag, text):
        """A button whose form asks "are you sure?" (a JavaScript confirm)."""
        for el in self.finds(tag):
            if el.text.strip() == text:
                def act():
                    el.click()
                    if not getattr(self, "no_js", False):
                        WebDriverWait(self.d, 5).until(expected_conditions.alert_is_present())
                        self.d.switch_to.alert.accept()
                self.navigated(act); return
        raise AssertionError(f"no <{tag}> with the text {text!r}")

    def task_counts(self):
        counts = {}
        for block in self.finds("dl.counts > div"):
            counts[block.find_element(By.TAG_NAME, "dt").text.strip()] = block.find_element(By.TAG_NAME, "dd").text.strip()
        return counts

    def task_state(self):
        states = self.finds("p .state")
        return states[0].text.strip() if states else ""

    def wait_task_done(self):
        self.wait_for(lambda: (self.d.refresh() or True) and self.task_state() in ("Done", "Failed", "Cancelled", "Interrupted"), "the task to finish", 90)
        self.page_checks()
        assert self.task_state() == "Done", f"the task ended {self.task_state()}: {self.body()[:1500]}"


def focus_is_visible(f):
    """Tab to the first link: it must show a focus outline."""
    f.find("body").send_keys(Keys.TAB)
    style = f.d.execute_script("const e = document.activeElement; const s = getComputedStyle(e); return [e.tagName, s.outlineStyle, s.outlineWidth, s.boxShadow];")
    assert style[1] != "none" and style[2] != "0px" or style[3] != "none", f"focus is not visible: {style}"


def run(server):
    started = time.time()
    d = browser()
    f = Flow(server, d)
    try:
        # -- sign in: a wrong password is refused; sign out; sign in --------------------------------------------
        f.login(ADMIN, "not the password")
        f.expect("The email or the password is wrong.")
        f.login(ADMIN, PASSWORD)
        f.expect("Databases")
        focus_is_visible(f)
        f.logout(); f.expect("Sign in to Roster")
        f.login(ADMIN, PASSWORD)

        # -- a resource, a loyalty program with codes, two more users ---------------------------------------------
        f.go("/resources/new")
        f.type("#name", "Newsletter")
        for box in f.finds("input[name=channels]"):
            if (box.get_attribute("value") in ("email", "sms")) != box.is_selected(): box.click()
        f.type("#categories", "Sales\nTips")
        f.click("button.primary"); f.expect("Newsletter")
        f.go("/loyalty"); f.type("#name", "Spring"); f.click_text("button", "Create program")
        f.type("#codes", "\n".join(f"SPRING-{i}" for i in range(1, 6)))
        f.click_text("button", "Add codes"); f.expect("SPRING-1")
        for email, role in (("viewer@example.com", "Viewer"), ("editor@example.com", "Editor")):
            f.go("/settings"); f.type("#new_email", email); f.choose("#new_role", role)
            f.type("#new_password_user", "a password for " + role.lower()); f.click_text("button", "Add user")
            f.expect("The user was added.")

        # -- a database with one custom field of each type; a refused value is explained beside its field -------
        f.go("/databases/new"); f.type("#name", "E2E Shop")
        for box in f.finds("input[name=resources]"):
            if not box.is_selected(): box.click()
        f.click("button.primary"); f.expect("E2E Shop")
        db_path = re.search(r"/databases/\d+", f.d.current_url).group(0)
        f.expect("This database has no profiles yet"); f.shot("database-empty")
        for name, kind, options in (("age", "Number", ""), ("score", "Float", ""), ("nickname", "Line", ""), ("since", "Date", ""),
                                    ("vip", "Boolean", ""), ("tier", "Enum", "gold, silver"), ("last_ip", "IP (IPv4)", ""),
                                    ("labels", "Tags", ""), ("prefs", "Object", ""), ("orders", "Array of objects", "")):
            f.go(db_path + "/fields/new"); f.type("#name", name); f.choose("#type", kind)
            if options: f.type("#options", options)
            f.click("button.primary"); f.expect(name)
        f.go(db_path + "/fields/new"); f.type("#name", "when"); f.choose("#type", "Date"); f.type("#default_value", "2024-02-30")
        f.click("button.primary")
        assert f.finds(".field-error"), "the refused default is explained beside its field"
        f.expect("2024-02")

        # -- a profile: create, edit, two subscriptions, history -------------------------------------------------
        f.go(db_path + "/profiles/new")
        f.type("#f_email", "ann@example.com"); f.type("#f__fname", "Ann"); f.type("#f_age", "31"); f.type("#f__city", "Moscow")
        f.type("#f_phones", "+79001234567")
        f.click("button.primary"); f.expect("The profile was created.")
        profile_url = f.d.current_url.split("?")[0]
        f.click_text("a", "Edit"); f.type("#f__fname", "Anna"); f.type("#f_age", "abc"); f.click("button.primary")
        f.expect("age is not a whole number")
        f.type("#f_age", "32"); f.click("button.primary"); f.expect("The profile was saved.")
        for target, contact in (("Newsletter — Email", "ann@example.com"), ("Newsletter — SMS", "+79001234567")):
            f.choose("#sub-target", target); f.type("#sub-contact", contact); f.click_text("button", "Add subscription")
        f.expect("ann@example.com"); f.expect("+79001234567")
        f.go(profile_url.replace(server.base, "") + "?days=0")
        f.expect("Subscribed to Newsletter — Email (ann@example.com)"); f.expect("Fields changed")
        f.shot("profile")

        # -- the subscriber's own page, from the link on the profile page ----------------------------------------
        link = f.find("#manager-url").get_attribute("value")
        assert link.startswith(server.base + "/s/"), link
        f.go(link.replace(server.base, ""))
        f.expect("Your subscriptions")
        assert "ann@example.com" not in f.body(), "the contact is masked"
        f.click_text("button", "Unsubscribe"); f.expect("Saved."); f.expect("Subscribe again")
        f.finds("input[name=category]")[0].click(); f.click_text("button", "Save topics"); f.expect("Saved.")
        f.click_text("button", "Unsubscribe from everything"); f.expect("You are unsubscribed from everything.")
        f.shot("subscription-manager")
        f.click_text("button", "Receive messages again"); f.expect("Saved.")
        f.go(profile_url.replace(server.base, "") + "?days=0")
        f.expect("by the subscriber in the subscription manager")

        # -- CSV import with one bad row: counts and the failed row ----------------------------------------------
        csv = os.path.join(server.dir, "people.csv")
        with open(csv, "w") as out:
            out.write("email,first name,city,age\n")
            for i in range(1, 12001):
                out.write(f"p{i}@example.com,Name{i},{'Moscow' if i % 2 else 'Paris'},{i % 80}\n")
            out.write("broken-email,Bad,Paris,1\n")
        f.go(db_path + "/import"); f.find("#file").send_keys(csv); f.click("button.primary")
        f.expect("Map the columns of people.csv"); f.shot("import-mapping")
        f.click_text("button", "Start import")
        # Catch it mid-progress for the screenshot (tasks pause between chunks in this suite).
        try:
            f.wait_for(lambda: (f.d.refresh() or True) and f.task_state() == "Running" and "0%" not in f.find("progress").text, "the import to be half-way", 15)
        except AssertionError:
            pass
        f.shot("task-running")
        f.wait_task_done()
        counts = f.task_counts()
        assert counts.get("Added") == "12,000" and counts.get("Failed") == "1", counts
        assert f.finds("a[href$='failed.csv']"), "the failed rows can be downloaded"
        f.go("/tasks"); f.expect("Import profiles")

        # -- the database dashboard with its charts ---------------------------------------------------------------
        f.go(db_path); assert f.finds("svg"), "the dashboard draws its charts"; f.shot("database")
        f.go("/databases"); f.shot("databases")

        # -- a segment with a nested AND/OR rule, a range and a limit --------------------------------------------
        f.go("/segments"); f.choose("#new-database", "E2E Shop"); f.choose("#new-kind", value="dynamic"); f.click_text("button", "Create segment")
        f.type("#name", "Moscow or Anna")
        assert not f.finds("#subject_r\\.0"), "a new segment starts with no rule"
        f.click_text("button", "+ Group")            # an OR group inside the AND
        f.choose_refresh("#subject_r\\.0\\.0", "Standard fields · City")
        f.choose_refresh("#op_r\\.0\\.0", "equals")
        f.type("#value_r\\.0\\.0", "Moscow")
        f.type("#range_from", "0"); f.type("#range_to", "90"); f.type("#limit", "5000")
        f.click("#refresh-button")
        selected = f.find("#selected-count").text
        assert selected not in ("", "0"), "the count shows the profiles"
        f.shot("segment-builder")
        f.click_text("button", "Save segment"); f.expect("Moscow or Anna")
        segment_path = re.search(r"/segments/\d+", f.d.current_url).group(0)
        f.expect("Profiles in the segment")
        # The range takes a stable but pseudo-random slice: check the bulk results on a profile the segment lists.
        member = f.find("table.data tbody a").get_attribute("href").replace(server.base, "")

        # -- every bulk action from the segment's menu ------------------------------------------------------------
        def bulk(action, fill=None, preview_shot=None, expect=("Done",)):
            f.go(segment_path); f.menu("Update profiles…")
            f.choose("#bulk_action", action)
            if fill: fill()
            f.click_text("button", "Preview"); f.expect("Selected profiles")
            if preview_shot: f.shot(preview_shot)
            f.click_text("button", "Launch the update")
            f.wait_task_done()
            return f.task_counts()

        c = bulk("Update profile fields", lambda: (f.choose("#field_0", "Country"), f.type("#value_0", "Russia")), "bulk-preview")
        assert c["Updated"] not in ("0", ""), c
        f.shot("task-done")
        f.go(member); f.expect("Russia")
        c = bulk("Add a subscription to a resource", lambda: (f.choose("#target", "Newsletter — Email"), f.choose("#status", "Subscribed")))
        c = bulk("Change the status of subscriptions", lambda: (f.choose("#target", "Newsletter — Email"), f.choose("#status", "Unconfirmed")))
        assert c["Updated"] not in ("0", ""), c
        c = bulk("Attach promo codes", lambda: f.choose("#program", "Spring"))
        assert c["Updated"] == "5", c
        f.expect("no free promo code left")
        c = bulk("Detach promo codes", lambda: f.choose("#program", "Spring"))
        assert c["Updated"] == "5", c
        c = bulk("Global unsubscribe")
        f.go(member); f.expect("Unsubscribed")
        c = bulk("Delete inactive profiles")
        assert c["Deleted"] == "0" and c["Skipped"] not in ("0", ""), f"new profiles have interactions since the cut-off: {c}"

        f.go("/tasks"); f.expect("Moscow or Anna"); f.shot("tasks")

        # -- cancel a long task ------------------------------------------------------------------------------------
        f.go(db_path + "/bulk-update"); f.choose("#bulk_action", "Update profile fields"); f.choose("#field_0", "Region"); f.type("#value_0", "Central")
        f.type("#range_from", "0"); f.type("#range_to", "100")
        f.click_text("button", "Launch the update")
        f.click_confirm("button", "Cancel task")
        f.wait_for(lambda: (f.d.refresh() or True) and f.task_state() == "Cancelled", "the task to stop", 30)
        counts = f.task_counts()
        assert counts["Updated"] != "12,001", f"cancelled before the end: {counts}"
        f.logout()

        # -- a viewer finds no way to change anything; an editor no way to delete -------------------------------
        f.login("viewer@example.com", "a password for viewer")
        f.go(db_path); f.go(profile_url.replace(server.base, ""))
        assert not [b for b in f.finds("form[method=post] button") if b.text.strip() != "Log out"], "a viewer sees no buttons that change data"
        assert not [a for a in f.finds("a") if a.text.strip() in ("Edit", "Update profiles…", "Add a profile")], "no edit links for a viewer"
        f.logout()
        f.login("editor@example.com", "a password for editor")
        f.go(profile_url.replace(server.base, ""))
        assert not [b for b in f.finds("button") if b.text.strip() == "Delete profile"], "an editor cannot delete profiles"
        f.go(db_path + "/bulk-update")
        assert not [o for o in f.finds("#bulk_action option") if o.get_attribute("value") == "delete_inactive"], "nor delete in bulk"

        # -- the editor turns on two-factor sign-in; then the password alone is not enough ----------------------
        f.go("/settings"); f.click_text("a", "Set up")
        f.click_text("button", "Set up two-factor sign-in")
        assert f.finds(".qr-code svg"), "the QR code is drawn"
        key = f.find("#totp-secret").text
        f.type("#confirm-code", totp(key, time.time())); f.click_text("button", "Turn on")
        f.expect("Your recovery codes")
        recovery = [li.text for li in f.finds("ul.recovery-codes li")]
        assert len(recovery) == 10, recovery
        f.shot("two-factor-codes")
        f.logout()
        f.login("editor@example.com", "a password for editor")
        f.expect("Two-factor sign-in")
        f.type("#code", "000000"); f.click("button[type=submit]"); f.expect("This code is not right")
        # The next step's code: the one just used to turn it on works only once.
        f.type("#code", totp(key, time.time() + 30)); f.click("button[type=submit]")
        f.expect("Databases")
        f.logout()
        f.login("editor@example.com", "a password for editor")
        f.type("#code", recovery[0]); f.click("button[type=submit]"); f.expect("Databases")
        f.logout()
    except Exception:
        f.shot("failure")
        raise
    finally:
        d.quit()

    # -- the same pages work without JavaScript -----------------------------------------------------------------------
    d = browser(javascript=False)
    f = Flow(server, d); f.no_js = True
    try:
        f.login(ADMIN, PASSWORD); f.expect("Databases")
        f.go("/segments"); f.choose("#new-database", "E2E Shop"); f.click_text("button", "Create segment")
        f.type("#name", "No script")
        f.click_text("button", "+ Rule")
        assert len(f.finds("input[name=node]")) == 2, "the rule was added by the server (to a segment that starts empty)"
        f.click("#refresh-button"); f.expect("Selected (after the limit)")
        f.click_text("button", "Save segment"); f.expect("No script")
        f.shot("no-javascript-segment")
    finally:
        d.quit()
    return time.time() - started, f.checked_pages


def main():
    shutil.rmtree(SHOTS, ignore_errors=True)
    server = Server()
    try:
        seconds, pages = run(server)
    except Exception:
        traceback.print_exc()
        print("e2e: FAILED; app log:\n" + open(os.path.join(server.dir, "app.log")).read()[-3000:])
        print(f"e2e: screenshots in {SHOTS}")
        server.stop()
        sys.exit(1)
    server.stop()
    store = "PostgreSQL" if server.database else "SQLite"
    print(f"e2e ({store}): all flows passed in {seconds:.1f} s; screenshots in {SHOTS}: {', '.join(sorted(os.listdir(SHOTS)))}")


if __name__ == "__main__":
    main()
