#!/usr/bin/env python3
"""A stand-in for Oracle's patch service (ARU) for tests: the REST paths WIT's client calls,
answered from files a test writes, behind HTTP Basic authentication like the real service.

    aru_server.py DIR USER PASSWORD    -> prints the port it listens on (127.0.0.1), then serves

DIR/releases.xml                          metadata?table=aru_releases
DIR/bug-<BUG>.xml                         search?bug=<BUG>
DIR/recommended-<PRODUCT>-<RELEASE>.xml   search?patch_type=all&life_cycle=Recommended&product=&release=
DIR/files/<NAME>                          download/<NAME>?...
DIR/conflicts.xml                         POST conflict_checks (else: no conflict); the request
                                          body is kept as DIR/conflict-request.xml
Anything else the service would answer "no patches" (error 10-016) for. Every request's path is
appended to DIR/requests.log with whether it carried credentials (never their value).
"""

import base64
import http.server
import os
import sys
import urllib.parse

NO_PATCHES = (b"<results><error><id>10-016</id>"
              b"<message>No patches found. Clear your search and try again.</message></error></results>")
LANGUAGES = b'<results><language id="0" iso_code="EN"><![CDATA[American English]]></language></results>'


NO_CONFLICT = (b'<conflict_check platform_id="2000"><conflict_free_list></conflict_free_list>'
               b"<conflict_sets></conflict_sets><messages></messages></conflict_check>")


def post(handler, root, expected):
    url = urllib.parse.urlsplit(handler.path)
    body = handler.rfile.read(int(handler.headers.get("Content-Length", "0")))
    with open(os.path.join(root, "requests.log"), "a") as log:
        log.write(f"POST {url.path} credentials={'yes' if handler.headers.get('Authorization') else 'no'}\n")
    if handler.headers.get("Authorization") != expected:
        return handler.send(401, b"<html>login required</html>", "text/html")
    if url.path != "/Orion/Services/conflict_checks":
        return handler.send(404, b"not found", "text/plain")
    with open(os.path.join(root, "conflict-request.xml"), "wb") as f:
        f.write(body)
    return handler.send(200, handler.file("conflicts.xml") or NO_CONFLICT)


def main():
    root, user, password = sys.argv[1], sys.argv[2], sys.argv[3]
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def send(self, status, body, content_type="application/xml"):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="ARU"')
            self.end_headers()
            self.wfile.write(body)

        def file(self, *parts):
            path = os.path.join(root, *parts)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    return f.read()
            return None

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            authorised = self.headers.get("Authorization") == expected
            with open(os.path.join(root, "requests.log"), "a") as log:
                log.write(f"{url.path}?{url.query} credentials={'yes' if self.headers.get('Authorization') else 'no'}\n")
            if not url.path.startswith("/Orion/Services/"):
                return self.send(404, b"not found", "text/plain")
            if not authorised:
                return self.send(401, b"<html>login required</html>", "text/html")
            tail = url.path[len("/Orion/Services/"):]
            first = lambda name: query.get(name, [""])[0]
            if tail == "metadata" and first("table") == "aru_languages":
                return self.send(200, LANGUAGES)
            if tail == "metadata" and first("table") == "aru_releases":
                return self.send(200, self.file("releases.xml") or NO_PATCHES)
            if tail == "search" and first("bug"):
                return self.send(200, self.file(f"bug-{first('bug')}.xml") or NO_PATCHES)
            if tail == "search" and first("life_cycle") == "Recommended":
                body = self.file(f"recommended-{first('product')}-{first('release')}.xml")
                return self.send(200, body or NO_PATCHES)
            if tail.startswith("download/"):
                body = self.file("files", os.path.basename(tail))
                if body is None:
                    return self.send(404, b"no such file", "text/plain")
                return self.send(200, body, "application/zip")
            return self.send(200, NO_PATCHES)

    Handler.do_POST = lambda self: post(self, root, expected)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
