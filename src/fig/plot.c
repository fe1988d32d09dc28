#define _GNU_SOURCE /* memmem */
/* Plotting support for the figure files (see plot.h): colours, text sizes,
 * the title, axes and series helpers, and rendering to files.
 *
 * plot_render() runs a figure's draw function once per device (pngcairo,
 * pdfcairo, svgcairo) on a fresh PLplot stream, into memory, and writes
 * the file with pf_write_file_atomic only when the drawing finished and
 * ends with its format's trailer.
 *
 * PLplot reports fatal errors through plexit(), which ends the process after
 * calling the handler installed with plsexit(); our handler longjmps back
 * into render_one() instead, so a PLplot error becomes PF_ERUNTIME. This is
 * best effort: PLplot's state after such an escape is not guaranteed.
 *
 * PLplot keeps its streams, handlers and our escape point in process-wide
 * state, so one figure is drawn at a time: render_one() holds plot_lock
 * while it draws and writes, and threads may draw at once.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <plplot.h>

#include "pathfinder/io.h"
#include "plot.h"

/* ------------------------------------------------------------- colours */

/* In the order of the C_* names in plot.h. */
static const PLINT cmap0_r[N_COLORS] = {255, 0, 0, 213, 0, 204, 110, 228, 86, 230, 226, 255, 200};
static const PLINT cmap0_g[N_COLORS] = {255, 0, 114, 94, 158, 121, 110, 228, 180, 159, 238, 255, 200};
static const PLINT cmap0_b[N_COLORS] = {255, 0, 178, 0, 115, 167, 110, 228, 233, 0, 250, 255, 200};

/* ---------------------------------------------------------------- text */

/* Set for each page by render_one(). */
static double page_text_factor = 1.0;

double plot_char_scale(double scale)
{
    return scale * page_text_factor;
}

void plot_text_size(double scale)
{
    plschr(0, plot_char_scale(scale));
}

void plot_plain_text(char *dst, size_t n, const char *src)
{
    size_t j = 0;
    for (size_t i = 0; src && src[i] && j + 2 < n; i++) {
        if (src[i] == '#') dst[j++] = '#';
        dst[j++] = src[i];
    }
    dst[j] = '\0';
}

void plot_title(const char *title, double disp)
{
    if (!title || !*title) return;
    char buf[512];
    plot_plain_text(buf, sizeof buf, title);
    plot_text_size(TITLE_SCALE);
    plcol0(C_INK);
    plmtex("t", disp, 0.5, 0.5, buf);
    plot_text_size(TEXT_SCALE);
}

/* ---------------------------------------------------------- drawing */

void plot_axes(const char *xopt, const char *yopt, int ylog)
{
    plcol0(C_GRID);
    plwidth(1.0);
    pllsty(1);
    plbox("g", 0, 0, ylog ? "gl" : "g", 0, 0);
    plcol0(C_INK);
    plwidth(1.5);
    plbox(xopt, 0, 0, yopt, 0, 0);
    plwidth(1.0);
}

void plot_series(const double *x, const double *y, const unsigned char *mark, long n,
                 const plot_style *style)
{
    PLFLT *px = malloc((size_t)(n > 0 ? n : 1) * sizeof *px);
    PLFLT *py = malloc((size_t)(n > 0 ? n : 1) * sizeof *py);
    if (!px || !py) {
        free(px);
        free(py);
        return;
    }
    plcol0(style->color);
    pllsty(style->line_style);
    plwidth(style->line_width);
    long run = 0;
    for (long i = 0; i <= n; i++) {
        int ok = i < n && isfinite(x[i]) && isfinite(y[i]);
        if (ok) {
            px[run] = x[i];
            py[run] = y[i];
            run++;
        }
        if (!ok || i == n) {
            if (run >= 2) plline((PLINT)run, px, py);
            if (run == 1 && !style->marker) plstring(1, px, py, "•");
            run = 0;
        }
    }
    pllsty(1);
    plwidth(1.0);
    if (style->marker) {
        long m = 0;
        for (long i = 0; i < n; i++)
            if (isfinite(x[i]) && isfinite(y[i]) && (!mark || mark[i])) {
                px[m] = x[i];
                py[m] = y[i];
                m++;
            }
        plot_text_size(style->marker_scale);
        if (m > 0) plstring((PLINT)m, px, py, style->marker);
        plot_text_size(TEXT_SCALE);
    }
    free(px);
    free(py);
}

/* --------------------------------------------------------- rendering */

static jmp_buf plot_escape;      /* where a fatal PLplot error lands */
static char plot_message[256];   /* the last PLplot error or warning */

static int on_plexit(const char *msg)
{
    snprintf(plot_message, sizeof plot_message, "%s", msg ? msg : "");
    longjmp(plot_escape, 1);
    return 1;   /* not reached: returning would let plexit() end the process */
}

static void on_plabort(const char *msg)
{
    /* Warnings do not stop the drawing; keep one in case the file ends up empty. */
    snprintf(plot_message, sizeof plot_message, "%s", msg ? msg : "");
}

/* PLplot asks on stdin for another device when the one named is missing,
 * so look it up first. */
static int have_device(const char *dev)
{
    enum { MAX_DEVICES = 256 };
    const char *menu[MAX_DEVICES], *names[MAX_DEVICES];
    const char **menu_p = menu, **names_p = names;
    int n = MAX_DEVICES;
    plgDevs(&menu_p, &names_p, &n);
    for (int i = 0; i < n; i++)
        if (names[i] && strcmp(names[i], dev) == 0) return 1;
    return 0;
}

/* A complete file of its kind ends with its trailer: PNG's IEND chunk,
 * PDF's %%EOF, SVG's closing tag (cairo may add a newline). */
static int complete(const char *dev, const char *buf, size_t n)
{
    const char *tail = strcmp(dev, "pngcairo") == 0   ? "IEND\xae\x42\x60\x82"
                       : strcmp(dev, "pdfcairo") == 0 ? "%%EOF"
                                                      : "</svg>";
    size_t t = strlen(tail);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--;
    return n >= t && memcmp(buf + n - t, tail, t) == 0;
}

void plot_text_add(plot_text *t, const char *fmt, ...)
{
    if (!t->buf && t->cap) return;   /* out of memory before */
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = t->buf ? vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap) : -1;
        va_end(ap);
        if (t->buf && w >= 0 && (size_t)w < t->cap - t->len) {
            t->len += (size_t)w;
            return;
        }
        size_t cap = t->cap ? 2 * t->cap : 256;
        while (w >= 0 && cap - t->len <= (size_t)w) cap *= 2;
        char *b = realloc(t->buf, cap);
        if (!b) {
            free(t->buf);
            t->buf = NULL;
            t->cap = 1;
            return;
        }
        t->buf = b;
        t->cap = cap;
    }
}

void plot_text_transitions(plot_text *t, const double *mid, long nt)
{
    for (long k = 0; k < nt; k++)
        plot_text_add(t, "%s T%ld at beta %.6g", k ? "," : "; transitions", k + 1, mid[k]);
}

/* s escaped for XML text into out (NULL: only count); returns the length. */
static size_t xml_escape(char *out, const char *s)
{
    size_t len = 0;
    for (; s && *s; s++) {
        const char *piece = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : NULL;
        size_t k = piece ? strlen(piece) : 1;
        if (out) memcpy(out + len, piece ? piece : s, k);
        len += k;
    }
    return len;
}

/* The SVG svg[0..n) with <title> and <desc> right after its <svg ...> tag,
 * in a new buffer (NULL when out of memory or there is no such tag). */
static char *svg_with_text(const char *svg, size_t n, const plot_figure *fig, size_t *out_n)
{
    const char *open = memmem(svg, n, "<svg", 4);
    const char *end = open ? memchr(open, '>', n - (size_t)(open - svg)) : NULL;
    if (!end) return NULL;
    size_t head = (size_t)(end + 1 - svg);
    static const char t0[] = "\n<title>", t1[] = "</title>\n<desc>", t2[] = "</desc>";
    size_t size = head + strlen(t0) + xml_escape(NULL, fig->svg_title) + strlen(t1) +
                  xml_escape(NULL, fig->svg_desc) + strlen(t2) + (n - head);
    char *out = malloc(size);
    if (!out) return NULL;
    size_t at = 0;
    memcpy(out, svg, head), at += head;
    memcpy(out + at, t0, strlen(t0)), at += strlen(t0);
    at += xml_escape(out + at, fig->svg_title);
    memcpy(out + at, t1, strlen(t1)), at += strlen(t1);
    at += xml_escape(out + at, fig->svg_desc);
    memcpy(out + at, t2, strlen(t2)), at += strlen(t2);
    memcpy(out + at, svg + head, n - head);
    *out_n = size;
    return out;
}

/* Draw fig with device dev into memory, check the drawing is complete, and
 * write it to path through pf_write_file_atomic (so a full disk or a crash
 * leaves the previous file, and devices and links are handled as for every
 * other output). */
static int render_unlocked(const plot_figure *fig, const char *dev, const char *path, pf_error *err)
{
    if (!have_device(dev))
        return pf_fail(err, PF_ERUNTIME, "%s: PLplot has no %s driver (plplot-driver-cairo)", path,
                       dev);
    char *buf = NULL;
    size_t n = 0;
    FILE *mem = open_memstream(&buf, &n);
    if (!mem) return pf_fail(err, PF_ERUNTIME, "%s: out of memory", path);

    PLINT previous = 0, stream = -1;
    plgstrm(&previous);
    plmkstrm(&stream);
    if (stream < 0) {
        fclose(mem);
        free(buf);
        return pf_fail(err, PF_ERUNTIME, "%s: no free PLplot stream", path);
    }
    plot_message[0] = '\0';
    plsexit(on_plexit);
    plsabort(on_plabort);
    volatile int crashed = 0;
    if (setjmp(plot_escape) == 0) {
        plsdev(dev);
        plsfile(mem);   /* PLplot closes it in plend1 */
        plspage(0, 0, fig->width, fig->height, 0, 0);
        plscmap0(cmap0_r, cmap0_g, cmap0_b, N_COLORS);
        page_text_factor = 2700.0 / (fig->width + fig->height);
        plinit();
        fig->draw(fig->ctx);
        plend1();
    } else {
        crashed = 1;
        if (setjmp(plot_escape) == 0) plend1();   /* release the stream if PLplot still can */
    }
    plsexit(NULL);
    plsabort(NULL);
    plsstrm(previous);
    const char *message = plot_message;

    int rc = PF_OK;
    if (crashed)
        rc = pf_fail(err, PF_ERUNTIME, "%s: PLplot error: %s", path,
                     message[0] ? message : "unknown");
    else if (!buf || !complete(dev, buf, n))
        rc = pf_fail(err, PF_ERUNTIME, "%s: the %s driver left an incomplete file (%zu bytes)%s%s",
                     path, dev, n, message[0] ? ": " : "", message);
    else if (strcmp(dev, "svgcairo") == 0 && (fig->svg_title || fig->svg_desc)) {
        size_t m;
        char *with = svg_with_text(buf, n, fig, &m);
        rc = with ? pf_write_file_atomic(path, with, m, err)
                  : pf_fail(err, PF_ERUNTIME, "%s: out of memory or no <svg> element", path);
        free(with);
    } else {
        rc = pf_write_file_atomic(path, buf, n, err);
    }
    free(buf);
    return rc;
}

/* One figure at a time in the process: see the top of the file. */
static int render_one(const plot_figure *fig, const char *dev, const char *path, pf_error *err)
{
    static pthread_mutex_t plot_lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&plot_lock);
    int rc = render_unlocked(fig, dev, path, err);
    pthread_mutex_unlock(&plot_lock);
    return rc;
}

int plot_render(const char *base, const plot_figure *fig, pf_error *err)
{
    static const char *const ext[3] = {".png", ".pdf", ".svg"};
    static const char *const dev[3] = {"pngcairo", "pdfcairo", "svgcairo"};
    size_t len = strlen(base);
    char *path = malloc(len + 8);
    if (!path) return pf_fail(err, PF_ERUNTIME, "%s: out of memory", base);
    int rc = PF_OK;
    for (int i = 0; i < 3 && rc == PF_OK; i++) {
        memcpy(path, base, len);
        strcpy(path + len, ext[i]);
        rc = render_one(fig, dev[i], path, err);
    }
    free(path);
    return rc;
}
