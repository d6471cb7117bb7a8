"""A third held-out batch for the cleaning stage's flags (issue 4), written before the rules
were looked at again: four pages per flag and five complete articles, in the markup of other
CMS families (WordPress blocks, Arc/Fusion, Drupal fields, a custom stack) and in English,
French, German, Spanish and Arabic. Same format as tests/flag_pages.py; scored apart in
bench/flags_eval.py ("batch2-" names).
"""

from __future__ import annotations

import json

from tests.flag_pages import STORIES, FlagPage

# Our own short prose in the other languages (six paragraphs each).
PROSE = {
    "fr": ("Grève des transports : le trafic fortement perturbé lundi", [
        "La circulation des trains régionaux sera fortement perturbée lundi dans toute la "
        "région, après l'appel à la grève lancé par trois syndicats de cheminots.",
        "La direction prévoit un train sur trois sur les principales lignes et conseille aux "
        "voyageurs de reporter leurs déplacements lorsque cela est possible.",
        "Les syndicats réclament une hausse des salaires et des recrutements supplémentaires "
        "pour faire face au manque de conducteurs constaté depuis l'automne.",
        "Le ministre des transports a appelé au dialogue et proposé une réunion mercredi, "
        "sans garantir toutefois de nouvelles mesures salariales.",
        "Dans les gares, des agents seront présents pour orienter les voyageurs et des bus "
        "de remplacement circuleront sur certaines lignes rurales.",
        "Les associations d'usagers dénoncent la répétition des mouvements sociaux et "
        "demandent un remboursement automatique des abonnements mensuels.",
    ]),
    "de": ("Stadtrat beschließt Ausbau der Radwege", [
        "Der Stadtrat hat am Donnerstagabend mit knapper Mehrheit beschlossen, das Netz der "
        "Radwege in den kommenden fünf Jahren um vierzig Kilometer zu erweitern.",
        "Die Kosten von rund zwölf Millionen Euro sollen zur Hälfte aus Fördermitteln des "
        "Landes getragen werden, teilte die Verwaltung nach der Sitzung mit.",
        "Auf mehreren Hauptstraßen fällt dafür jeweils eine Fahrspur für Autos weg, was bei "
        "der Opposition und beim Einzelhandel auf deutliche Kritik stieß.",
        "Die Oberbürgermeisterin verteidigte den Plan und verwies auf die steigende Zahl der "
        "Unfälle mit Radfahrern an unübersichtlichen Kreuzungen.",
        "Die ersten Abschnitte sollen bereits im Herbst gebaut werden, zunächst entlang des "
        "Flussufers und in der Nähe der beiden großen Schulzentren.",
        "Anwohner können die Pläne ab Montag im Rathaus einsehen und bis Ende des Monats "
        "schriftlich Einwände erheben.",
    ]),
    "es": ("La sequía obliga a restringir el riego en el valle", [
        "Las autoridades del agua anunciaron el martes nuevas restricciones al riego agrícola "
        "en todo el valle, tras el invierno más seco registrado en tres décadas.",
        "Los embalses de la cuenca se encuentran al veintiocho por ciento de su capacidad, "
        "según los datos publicados por la confederación hidrográfica.",
        "Los agricultores podrán regar solo dos días por semana y los cultivos leñosos "
        "tendrán prioridad frente a los de temporada, explicó el organismo.",
        "Las organizaciones agrarias calificaron la medida de necesaria pero insuficiente y "
        "pidieron ayudas directas para compensar la pérdida de cosechas.",
        "En varios municipios se estudian cortes nocturnos del suministro doméstico si las "
        "lluvias no llegan antes del comienzo del verano.",
        "El gobierno regional convocará la próxima semana una mesa de la sequía con alcaldes, "
        "regantes y representantes de la industria alimentaria.",
    ]),
    "ar": ("افتتاح محطة جديدة لتحلية المياه على الساحل", [
        "افتتحت السلطات يوم الأحد محطة جديدة لتحلية مياه البحر على الساحل الشمالي، قالت إنها "
        "ستوفر مياه الشرب لنحو مليون نسمة في المدن المجاورة.",
        "وقال وزير المياه خلال حفل الافتتاح إن المحطة ستخفف الضغط على الآبار الجوفية التي "
        "تراجع منسوبها بشكل كبير خلال السنوات الماضية.",
        "وبلغت تكلفة المشروع نحو أربعمئة مليون دولار، ومولته الحكومة بالشراكة مع عدد من "
        "المصارف المحلية والدولية، بحسب بيان رسمي.",
        "ويعتمد تشغيل المحطة جزئيا على الطاقة الشمسية، إذ أقيمت بجانبها حقول من الألواح "
        "تغطي مساحة تزيد على مئتي هكتار.",
        "وأبدى سكان في القرى الساحلية ارتياحهم للمشروع، لكنهم طالبوا بتحسين شبكات التوزيع "
        "القديمة التي تتسرب منها كميات كبيرة من المياه.",
        "ومن المتوقع أن تبدأ المرحلة الثانية من المشروع العام المقبل لمضاعفة الطاقة "
        "الإنتاجية للمحطة.",
    ]),
}


def _story(key: str) -> tuple[str, list[str]]:
    return PROSE[key] if key in PROSE else STORIES[key]


def _p(key: str, count: int = 6) -> str:
    return "".join(f"<p>{p}</p>" for p in _story(key)[1][:count])


def _ld(obj: object) -> str:
    return f"<script type='application/ld+json'>{json.dumps(obj, ensure_ascii=False)}</script>"


def _page(cms: str, key: str, body: str, *, lang: str = "en", head: str = "",
          extra: str = "", title: str | None = None) -> str:
    """A whole page in one of four CMS families' markup."""
    headline = title or _story(key)[0]
    rtl = " dir='rtl'" if lang == "ar" else ""
    meta = (f"<meta charset='utf-8'><title>{headline}</title>"
            f"<meta property='og:title' content='{headline}'>"
            "<meta property='og:type' content='article'>" + head)
    if cms == "wp":
        main = (f"<div class='site-content'><article id='post-4812' class='post-4812 post "
                f"type-post status-publish hentry'><header class='entry-header'><h1 "
                f"class='entry-title'>{headline}</h1><div class='entry-meta'><span "
                "class='posted-on'><time class='entry-date published' datetime='2024-05-02T"
                "09:10:00+02:00'>2 May 2024</time></span><span class='byline'>Anna Roth"
                f"</span></div></header><div class='entry-content wp-block-post-content'>{body}"
                "</div><footer class='entry-footer'><span class='cat-links'>Posted in "
                "<a href='/category/news'>News</a></span></footer></article>"
                "<aside id='secondary' class='widget-area'><section class='widget "
                "widget_recent_entries'><h2 class='widget-title'>Recent posts</h2><ul><li>"
                "<a href='/p1'>Harbour works delayed again</a></li><li><a href='/p2'>Schools "
                "reopen after repairs</a></li></ul></section></aside></div>")
    elif cms == "arc":
        main = (f"<div id='fusion-app'><div class='layout-section'><header class='b-header'>"
                f"<h1 class='headline'>{headline}</h1><div class='byline'>By Lena Ortiz</div>"
                "<time class='timestamp' datetime='2024-05-02T07:00:00Z'>May 2, 2024</time>"
                f"</header><div class='article-body'>{body}</div></div><div class='"
                "right-rail'><div class='most-read'><h2>Most read</h2><ol><li><a href='/m1'>"
                "Storm warning for the coast</a></li><li><a href='/m2'>Prices fall for third "
                "month</a></li></ol></div></div></div>")
    elif cms == "drupal":
        main = (f"<div class='dialog-off-canvas-main-canvas'><main role='main'><div "
                f"class='region region-content'><article role='article' class='node "
                f"node--type-article node--view-mode-full'><h1 class='page-title'><span "
                f"class='field field--name-title'>{headline}</span></h1><div class='node__"
                "meta'><span class='field--name-uid'>Redaktion</span> <span class='field--"
                "name-created'>02.05.2024</span></div><div class='clearfix text-formatted "
                f"field field--name-body field--type-text-with-summary'>{body}</div></article>"
                "</div></main><div class='region region-sidebar-first'><nav class='menu--"
                "main'><ul><li><a href='/region'>Region</a></li><li><a href='/sport'>Sport"
                "</a></li></ul></nav></div></div>")
    else:
        main = (f"<div class='wrap'><section class='story'><h1 class='story__title'>"
                f"{headline}</h1><p class='story__meta'>Staff reporter · 2024-05-02</p>"
                f"<div class='story__content'>{body}</div></section><section class='"
                "teasers'><h3>Also in the news</h3><a href='/t1'>Airport expansion on hold"
                "</a> <a href='/t2'>New ferry timetable</a></section></div>")
    return (f"<!doctype html><html lang='{lang}'{rtl}><head>{meta}</head><body>"
            "<header class='site-header'><a class='logo' href='/'>Daily Paper</a><nav><a "
            "href='/news'>News</a> <a href='/business'>Business</a> <a href='/culture'>"
            f"Culture</a></nav></header>{main}{extra}<footer class='site-footer'><a "
            "href='/imprint'>Imprint</a> <a href='/privacy'>Privacy</a></footer>"
            "</body></html>")


def _article_ld(key: str, kind: str = "NewsArticle", **more: object) -> str:
    return _ld({"@context": "https://schema.org", "@type": kind, "headline": _story(key)[0],
                "datePublished": "2024-05-02T07:00:00Z", **more})


def _updates(key: str, stamp: str, wrap: str) -> str:
    """Six live updates: ``stamp`` formats the clock (i = index), ``wrap`` the block."""
    return "".join(wrap.format(t=stamp.format(h=9 + i, m=(i * 7) % 60), p=para)
                   for i, para in enumerate(_story(key)[1][:6]))


def batch2_pages() -> list[FlagPage]:
    pay = frozenset({"paywall", "partial"})
    cookie = frozenset({"cookie_wall", "partial"})
    live = frozenset({"liveblog_index"})
    none: frozenset[str] = frozenset()
    u = "https://paper.example/{}"
    return [
        # ---- paywall teasers
        FlagPage("batch2-paywall-arc-ld-bool", _page("arc", "de", _p("de", 2) + (
            "<div class='fusion-gate'><p>Lesen Sie weiter mit Z+.</p><a href='/abo'>Jetzt "
            "testen</a></div>"), lang="de", head=_article_ld("de", isAccessibleForFree=False)),
            pay, url=u.format("region/radwege-ausbau-1.123")),
        FlagPage("batch2-paywall-wp-graph-string", _page("wp", "fr", _p("fr", 1), lang="fr",
            head=_ld({"@context": "https://schema.org", "@graph": [
                {"@type": "WebPage", "@id": "https://paper.example/greve#page"},
                {"@type": "NewsArticle", "headline": PROSE["fr"][0],
                 "isAccessibleForFree": "False"}]})), pay,
            url=u.format("2024/05/02/greve-transports")),
        FlagPage("batch2-paywall-drupal-tier", _page("drupal", "es", _p("es", 2) + (
            "<div class='bloque-suscripcion'><p>Este contenido es exclusivo para "
            "suscriptores.</p><a href='/suscribete'>Suscríbete</a></div>"), lang="es",
            head="<meta property='article:content_tier' content='locked'>"), pay,
            url=u.format("sociedad/sequia-riego")),
        FlagPage("batch2-paywall-custom-arabic", _page("custom", "ar", _p("ar", 1) + (
            "<div class='tp-modal'><p>هذا المحتوى متاح للمشتركين فقط.</p><a href='/subscribe'>"
            "اشترك الآن</a></div>"), lang="ar"), pay, url=u.format("ar/news/desalination")),
        # ---- cookie walls
        FlagPage("batch2-cookie-onetrust-de", _page("drupal", "de", "", lang="de", extra=(
            "<div id='onetrust-consent-sdk'><div id='onetrust-banner-sdk' class='otFlat'>"
            "<p id='onetrust-policy-text'>Wir verwenden Cookies und ähnliche Technologien, "
            "um Inhalte zu personalisieren.</p><button id='onetrust-accept-btn-handler'>"
            "Alle akzeptieren</button><button id='onetrust-pc-btn-handler'>Einstellungen"
            "</button></div></div>")), cookie, url=u.format("region/radwege"),
            feed_summary=PROSE["de"][1][0]),
        FlagPage("batch2-cookie-didomi-fr", _page("wp", "fr", "", lang="fr", extra=(
            "<div id='didomi-host'><div class='didomi-popup-container'><p>Avec votre accord,"
            " nos partenaires et nous utilisons des traceurs.</p><button id='didomi-notice-"
            "agree-button'>Accepter</button><button>Continuer sans accepter</button></div>"
            "</div>")), cookie, url=u.format("2024/05/02/greve"),
            feed_summary=PROSE["fr"][1][0]),
        FlagPage("batch2-cookie-sourcepoint-es", (
            "<!doctype html><html lang='es'><head><meta charset='utf-8'><title>Aviso</title>"
            "<script>window.__tcfapi=function(){};</script></head><body><div id='"
            "sp_message_container_884210' class='sp_veil'><iframe id='sp_message_iframe_"
            "884210' title='SP Consent Message' src='https://cmp.example/index.html'></iframe>"
            "</div><p>Cargando…</p></body></html>"), cookie, url=u.format("sequia"),
            feed_summary=PROSE["es"][1][0]),
        FlagPage("batch2-cookie-cookiebot-ar", _page("custom", "ar", "", lang="ar", extra=(
            "<div id='CybotCookiebotDialog' class='CybotCookiebotDialogActive'><h2>هذا "
            "الموقع يستخدم ملفات تعريف الارتباط</h2><p>نستخدم ملفات تعريف الارتباط لتخصيص "
            "المحتوى والإعلانات.</p><button id='CybotCookiebotDialogBodyLevelButtonLevel"
            "OptinAllowAll'>السماح بالكل</button><button>رفض</button></div>")), cookie,
            url=u.format("ar/news/plant"), feed_summary=PROSE["ar"][1][0]),
        # ---- live blogs
        FlagPage("batch2-live-wp-ld-updates", _page("wp", "ceasefire", _updates(
            "ceasefire", "{h}:{m:02d}", "<div class='wp-block-group entry'><p><b>{t}</b></p>"
            "<p>{p}</p></div>"), head=_ld({
                "@context": "https://schema.org", "@type": "LiveBlogPosting",
                "headline": "Geneva talks", "coverageStartTime": "2024-05-02T08:00:00Z",
                "liveBlogUpdate": [{"@type": "BlogPosting", "headline": f"Update {i}",
                                    "articleBody": p} for i, p in enumerate(
                                        STORIES["ceasefire"][1][:6])]}),
            title="Geneva talks: envoys return"), live, url=u.format("world/geneva-talks")),
        FlagPage("batch2-live-drupal-ticker-de", _page("drupal", "de", _updates(
            "de", "{h:02d}:{m:02d} Uhr", "<div class='ticker-item'><time>{t}</time><p>{p}</p>"
            "</div>"), lang="de", title="Radwege-Debatte im Liveticker"), live,
            url=u.format("region/liveticker-stadtrat")),
        FlagPage("batch2-live-arc-vivo-es", _page("arc", "es", _updates(
            "es", "{h}:{m:02d}", "<section class='c-entry'><span class='c-hora'>{t}</span>"
            "<p>{p}</p></section>"), lang="es", title="Sequía, en vivo: última hora"), live,
            url=u.format("sociedad/sequia-en-vivo")),
        FlagPage("batch2-live-custom-arabic", _page("custom", "ar", _updates(
            "ar", "{h}:{m:02d}", "<div class='live-entry'><time datetime='2024-05-02T{t}'>{t}"
            "</time><p>{p}</p></div>"), lang="ar", title="مباشر: افتتاح محطة التحلية"), live,
            url=u.format("ar/live/desalination")),
        # ---- complete articles (two carry consent-manager or paywall-ish markup)
        FlagPage("batch2-normal-wp-en", _page("wp", "floods", _p("floods"),
            head=_article_ld("floods", isAccessibleForFree=True)), none,
            url=u.format("2024/05/02/floods")),
        FlagPage("batch2-normal-arc-fr-onetrust", _page("arc", "fr", _p("fr"), lang="fr",
            extra="<div id='onetrust-consent-sdk'></div><script>window.__tcfapi=1</script>"),
            none, url=u.format("societe/greve-transports")),
        FlagPage("batch2-normal-drupal-de", _page("drupal", "de", _p("de"), lang="de",
            head=_article_ld("de", isAccessibleForFree="True")), none,
            url=u.format("region/radwege")),
        FlagPage("batch2-normal-custom-es-times", _page("custom", "es", _p("es") + (
            "<p>La reunión será a las 10:00 y la rueda de prensa, a las 13:30.</p>"),
            lang="es"), none, url=u.format("sociedad/sequia")),
        FlagPage("batch2-normal-wp-ar", _page("wp", "ar", _p("ar"), lang="ar",
            head=_article_ld("ar", "Article")), none, url=u.format("ar/news/plant-opens")),
    ]
