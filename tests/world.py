"""A loopback web server that plays the outside world for the pipeline tests.

It serves an RSS feed whose item links (with utm_* parameters) to a page carrying the seed
story inside nav/sidebar/footer boilerplate, plus broken things: malformed XML, a 404, a PDF.
"""

from __future__ import annotations

import html
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


BOILERPLATE_NAV = "".join(f'<li><a href="/section/{s}">{s.title()}</a></li>'
                          for s in ("world", "politics", "business", "sport", "culture", "opinion"))
SIDEBAR = "".join(f'<li><a href="/most-read/{i}">Most read story number {i} of the day</a></li>'
                  for i in range(1, 8))


def story_page(story: str) -> bytes:
    paragraphs = "\n".join(f"<p>{html.escape(p.strip())}</p>" for p in story.split("\n\n") if p.strip())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>US strikes Iran-linked facilities in Syria | Loopback News</title>
<meta property="og:title" content="US strikes Iran-linked facilities in eastern Syria">
<meta name="author" content="Loopback News staff">
<meta property="article:published_time" content="2023-10-27T01:30:00Z">
</head><body>
<header><a href="/">Loopback News</a><nav><ul>{BOILERPLATE_NAV}</ul></nav>
<form action="/search"><input name="q" placeholder="Search"></form></header>
<div class="cookie-banner">We use cookies to improve your experience. <button>Accept</button></div>
<main><article>
<h1>US strikes Iran-linked facilities in eastern Syria</h1>
<p class="byline">By Loopback News staff, October 27, 2023</p>
{paragraphs}
</article>
<aside><h2>Most read</h2><ul>{SIDEBAR}</ul>
<div class="ad">Advertisement: subscribe for 1 dollar a week</div></aside></main>
<footer><p>Copyright 2023 Loopback News. All rights reserved.</p>
<ul><li><a href="/about">About us</a></li><li><a href="/privacy">Privacy</a></li>
<li><a href="/terms">Terms</a></li></ul></footer>
</body></html>""".encode()


def rss(base: str, items: list[tuple[str, str, str]]) -> bytes:
    body = "".join(
        f"<item><title>{html.escape(t)}</title><link>{html.escape(link)}</link>"
        f"<guid isPermaLink=\"false\">{html.escape(guid)}</guid>"
        "<pubDate>Fri, 27 Oct 2023 01:30:00 GMT</pubDate>"
        f"<description>{html.escape(t)}</description></item>"
        for t, link, guid in items
    )
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Loopback News</title><link>{base}/</link><description>test</description>"
            f"{body}</channel></rss>").encode()


class World:
    """A loopback HTTP server with the pages of the test, counting requests per path."""

    def __init__(self, story: str) -> None:
        self.hits: Counter[str] = Counter()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.pages: dict[str, tuple[int, str, bytes]] = {
            "/feed.xml": (200, "application/rss+xml", rss(self.base, [
                ("US strikes Iran-linked facilities in Syria",
                 f"{self.base}/world/us-strikes-syria?utm_source=rss&utm_medium=feed&fbclid=abc",
                 "story-1"),
                ("A page that is gone", f"{self.base}/world/gone", "story-404"),
                ("A PDF, not a page", f"{self.base}/files/report.pdf", "story-pdf"),
            ])),
            "/broken.xml": (200, "application/rss+xml",
                            b'<?xml version="1.0"?><rss><channel><title>Broken<item><title>x'),
            "/world/us-strikes-syria": (200, "text/html; charset=utf-8", story_page(story)),
            "/files/report.pdf": (200, "application/pdf",
                                  b"%PDF-1.4\n" + bytes(range(256)) * 64),
            "/robots.txt": (200, "text/plain", b"User-agent: *\nAllow: /\n"),
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        world = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?", 1)[0]
                world.hits[path] += 1
                status, ctype, body = world.pages.get(path, (404, "text/html", b"not found"))
                self.send_response(status)
                if 300 <= status < 400:  # a redirect's body names where to
                    self.send_header("Location", body.decode())
                    body = b""
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def __enter__(self) -> World:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
