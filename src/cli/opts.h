/* Option tables: every option of a command in one row that says how it is
 * spelled, parsed, range-checked and stored, and what --help says of it.
 *
 * A command's options live in a struct of its own; a row names a field by
 * its offset. --help prints the value each field holds after the command
 * set its defaults, and the commands set them from the library's own
 * defaults (pf_train_config_default, pf_detect_config_default, ...), so the
 * help can never disagree with the code. Bad usage gets one line on
 * stderr naming the option and what it needs. */
#ifndef PATHFINDER_CLI_OPTS_H
#define PATHFINDER_CLI_OPTS_H

#include <stddef.h>
#include <stdio.h>

typedef enum {
    CLI_END = 0,   /* ends a table */
    CLI_SECTION,   /* a heading in --help (help is its text) */
    CLI_NOTE,      /* a paragraph in --help under the options before it */
    CLI_FLAG,      /* int set to 1 */
    CLI_STR,       /* const char * (the argument itself) */
    CLI_INT,       /* int */
    CLI_LONG,      /* long */
    CLI_U64,       /* uint64_t */
    CLI_DOUBLE,    /* double */
    CLI_CHOICE,    /* int: index of the argument in choices */
    CLI_CUSTOM     /* parse() stores it */
} cli_kind;

enum {
    CLI_LO_OPEN = 1,      /* the lower bound is excluded */
    CLI_HI_OPEN = 2,      /* the upper bound is excluded */
    CLI_NO_DEFAULT = 4,   /* --help shows no default */
    CLI_REQUIRED = 8      /* --help marks it (required); the command checks */
};

typedef struct cli_option cli_option;
struct cli_option {
    cli_kind kind;
    const char *name;             /* without the leading dashes */
    const char *arg;              /* metavariable in --help ("X", "N", "FILE") */
    size_t offset;                /* of the value in the command's option struct */
    double lo, hi;                /* numbers: the allowed range */
    unsigned flags;
    const char *help;             /* one paragraph; --help wraps it */
    const char *const *choices;   /* CLI_CHOICE: NULL-terminated names */
    /* CLI_CUSTOM: store arg into the struct; return NULL, or what the
     * option needs ("a list like 0,3,7") for the error line. */
    const char *(*parse)(void *opts, const char *arg);
    /* The default as --help shows it, when the plain value would not say
     * it right (NULL: the field's value). */
    void (*show)(const void *opts, char *buf, size_t n);
    size_t given;                 /* offset+1 of an int set to 1 when the option is given, or 0 */
};

#define CLI_OFF(type, field) offsetof(type, field)
/* offset + 1 of the "given" flag, so that 0 means none */
#define CLI_GIVEN(type, field) (offsetof(type, field) + 1)

/* A table of rows (ended by a CLI_END row) for the part of the command's
 * option struct that starts `base` bytes in (shared tables such as the data
 * options describe a struct that commands embed). A list of tables ends
 * with rows == NULL. */
typedef struct {
    const cli_option *rows;
    size_t base;
} cli_table;

/* Parse argv[1..argc) against the tables into opts. Positional arguments
 * are moved to the end; *first gets the index of the first. 0 on success,
 * or PF_EINPUT after one line on stderr. --help sets *help. */
int cli_parse(const char *cmd, const cli_table *tables, int argc, char **argv, void *opts, int *help,
              int *first);

/* --help: the usage lines, then every row of the tables with the defaults
 * held in opts, then the tail. */
void cli_print_help(FILE *f, const char *usage, const cli_table *tables, const void *opts,
                    const char *tail);

/* A number as --help shows it: %g, with integers as integers. */
void cli_show_number(double v, char *buf, size_t n);

#endif
