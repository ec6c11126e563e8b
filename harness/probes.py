"""What a simulated browser user looks for on a page: the captions of its answers, the elements
that show a page can be used, and the JavaScript that times an answer by the browser's own clock."""

from __future__ import annotations

SEEN, DECODED, YOUR_DRAWING = "What the model sees", "Decoded from its mean", "Your last drawing"
DRAW_CANVAS = '[class*="st-key-draw_canvas_"]'  # (its key counts the Clear presses)
MAP = '[class*="st-key-latent_map_"]'  # the map chart (its key names the model and projection)
# What a page shows once it can be used: at least so many of these (in open shadow roots too: the
# canvas component isolates its styles in one) inside that element.
READY = {"Draw": (DRAW_CANVAS, "canvas.upper-canvas", 1), "Latent map": (MAP, ".scatterlayer .trace", 11),
         "Train": ('[data-testid="stForm"]', "button", 1),
         "Generate": ('[data-testid="stMain"]', '[data-testid="stImageContainer"] img', 3),
         "watch the run": ('[data-testid="stMain"]', '[data-testid="stProgress"]', 1)}

# Every pointer release's time, so latencies run from the user's action in the browser's own clock.
RELEASE_CLOCK_JS = ("window.__released = 0; "
                    "addEventListener('pointerup', () => { window.__released = performance.now(); }, true);")
# PAGE_SHOWN_JS and IMAGE_SHOWN_JS: milliseconds since the last pointer release once the answer is
# in the DOM, else 0 (wait_for_function polls them); the text of an exception or error box if the
# page shows one instead.
PAGE_ERROR_JS = """
    const failure = document.querySelector(
        '[data-testid=stMain] :is([data-testid=stException], [data-testid=stAlertContentError])');
    if (failure) return 'the page shows an error: ' + failure.textContent;
"""
PAGE_SHOWN_JS = """([title, element, selector, count]) => {""" + PAGE_ERROR_JS + """
    const find = root => [...root.querySelectorAll(selector),
        ...[...root.querySelectorAll('*')].filter(e => e.shadowRoot).flatMap(e => find(e.shadowRoot))];
    const heading = document.querySelector('[data-testid=stMain] h1');
    const box = document.querySelector(element);
    return heading && heading.textContent.trim() === title && box && find(box).length >= count
        ? performance.now() - window.__released : 0;
}"""
FIND_IMAGE_JS = """(caption => [...document.querySelectorAll('[data-testid=stImageContainer]')]
    .find(b => (b.querySelector('[data-testid=stImageCaption]')?.textContent || '').includes(caption))
    ?.querySelector('img'))"""  # the <img> of the st.image whose caption contains ``caption``
CANVAS_INK_JS = """canvas => {
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let ink = 0;
    for (let i = 0; i < data.length; i += 4) ink += data[i] > 128;
    return ink / (data.length / 4);
}"""  # the share of a canvas's pixels that are light: white strokes on black
ELEMENT_AT_JS = """([x, y]) => {
    let element = null;
    for (let e = document.elementFromPoint(x, y); e && e !== element; e = e.shadowRoot?.elementFromPoint(x, y) ?? e)
        element = e;
    return `<${element?.tagName.toLowerCase()} class="${element?.className}">`;
}"""  # the element at (x, y), through shadow roots
IMAGE_SRC_JS = f"caption => {FIND_IMAGE_JS}(caption)?.src ?? null"
CAPTIONS_JS = """() => [...document.querySelectorAll('[data-testid=stMain] [data-testid=stImageCaption]')]
    .map(c => c.textContent)"""  # every image caption on the page: what an unanswered click showed instead
IMAGE_BYTES_JS = f"""async caption => {{
    const bytes = new Uint8Array(await (await fetch({FIND_IMAGE_JS}(caption).src)).arrayBuffer());
    return btoa(Array.from(bytes, b => String.fromCharCode(b)).join(''));
}}"""  # the file of that <img>, fetched by the page itself (base64)
IMAGE_SHOWN_JS = f"""([caption, before]) => {{{PAGE_ERROR_JS}
    const img = {FIND_IMAGE_JS}(caption);
    const loaded = img && img.src !== before && img.complete && img.naturalWidth > 0;
    return loaded ? performance.now() - window.__released : 0;
}}"""

# Each caption's text colour, its container's opacity (Streamlit fades captions by opacity) and the
# first opaque background behind it: what its contrast is computed from (``harness.browser.contrast``).
CAPTION_COLOURS_JS = """() => [...document.querySelectorAll('[data-testid=stCaptionContainer]')].map(caption => {
    const text = getComputedStyle(caption.querySelector('p') || caption).color;
    let element = caption, background = 'rgba(0, 0, 0, 0)';
    while (element && /^rgba\\(.*, 0\\)$|^transparent$/.test(background)) {
        background = getComputedStyle(element).backgroundColor;
        element = element.parentElement;
    }
    return {text, opacity: parseFloat(getComputedStyle(caption).opacity), background,
            words: caption.textContent.slice(0, 40)};
})"""
