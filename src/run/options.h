/* Option tables: every option of a command in one row that says how it is
 * spelled, parsed, range-checked and stored, and what --help says of it.
 *
 * A command's options live in a struct of its own; a row names a field by
 * its offset. --help prints the value each field holds after the command
 * set its defaults, and the commands set them from the library's own
 * defaults (pf_train_config_default, pf_detect_config_default, ...), so the
 * help can never disagree with the code. A bad value gets one line naming
 * the option and what it needs. Internal to the library: the command line
 * and the bindings reach the tables through pf_command (run.h). */
#ifndef PATHFINDER_RUN_OPTIONS_H
#define PATHFINDER_RUN_OPTIONS_H

#include <stddef.h>
#include <stdio.h>

#include "pathfinder/core.h"

typedef enum {
    OPT_END = 0,   /* ends a table */
    OPT_SECTION,   /* a heading in --help (help is its text) */
    OPT_NOTE,      /* a paragraph in --help under the options before it */
    OPT_FLAG,      /* int set to 1 */
    OPT_STR,       /* const char * (the argument itself) */
    OPT_INT,       /* int */
    OPT_LONG,      /* long */
    OPT_U64,       /* uint64_t */
    OPT_DOUBLE,    /* double */
    OPT_CHOICE,    /* int: index of the argument in choices */
    OPT_CUSTOM     /* parse() stores it */
} pf_option_kind;

enum {
    OPT_LO_OPEN = 1,      /* the lower bound is excluded */
    OPT_HI_OPEN = 2,      /* the upper bound is excluded */
    OPT_NO_DEFAULT = 4,   /* --help shows no default */
    OPT_REQUIRED = 8      /* --help marks it (required); the command checks */
};

typedef struct pf_option pf_option;
struct pf_option {
    pf_option_kind kind;
    const char *name;             /* without the leading dashes */
    const char *arg;              /* metavariable in --help ("X", "N", "FILE") */
    size_t offset;                /* of the value in the command's option struct */
    double lo, hi;                /* numbers: the allowed range */
    unsigned flags;
    const char *help;             /* one paragraph; --help wraps it */
    const char *const *choices;   /* OPT_CHOICE: NULL-terminated names */
    /* OPT_CUSTOM: store arg into the struct; return NULL, or what the
     * option needs ("a list like 0,3,7") for the error line. */
    const char *(*parse)(void *opts, const char *arg);
    /* The default as --help shows it, when the plain value would not say
     * it right (NULL: the field's value). */
    void (*show)(const void *opts, char *buf, size_t n);
    size_t given;                 /* offset+1 of an int set to 1 when the option is given, or 0 */
};

#define OPT_OFF(type, field) offsetof(type, field)
/* offset + 1 of the "given" flag, so that 0 means none */
#define OPT_GIVEN(type, field) (offsetof(type, field) + 1)

/* A table of rows (ended by a OPT_END row) for the part of the command's
 * option struct that starts `base` bytes in (shared tables such as the data
 * options describe a struct that commands embed). A list of tables ends
 * with rows == NULL. */
typedef struct {
    const pf_option *rows;
    size_t base;
} pf_option_table;

/* Set the option `name` (without dashes) from value (NULL for a flag) in
 * the part of opts its table describes; PF_EINPUT naming the option and
 * what it needs when the value will not do, or when there is no such
 * option. */
int pf_options_set(const pf_option_table *tables, void *opts, const char *name, const char *value,
                   pf_error *err);
/* The row of an option, and the base of its table (NULL if none). */
const pf_option *pf_options_find(const pf_option_table *tables, const char *name, size_t *base);
/* The options (not sections or notes), counted and by index. */
int pf_options_count(const pf_option_table *tables);
const pf_option *pf_options_at(const pf_option_table *tables, int i);

/* --help: the usage lines, then every row of the tables with the defaults
 * held in opts, then the tail. */
void pf_options_help(FILE *f, const char *usage, const pf_option_table *tables, const void *opts,
                    const char *tail);

/* A number as --help shows it: %g, with integers as integers. */
void pf_option_number(double v, char *buf, size_t n);

#endif
