"""The run log's schema: numbered migrations, each run once, in order, inside a transaction.

Never edit a released migration: add the next number.
"""

from __future__ import annotations

import sqlite3
from typing import Iterable

MIGRATIONS: list[tuple[int, str]] = [
    (1, """
    CREATE TABLE comparisons (
        id INTEGER PRIMARY KEY,
        modality TEXT NOT NULL,
        title TEXT NOT NULL,
        template_name TEXT,
        spec TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL DEFAULT 'running',
        winner_run_id INTEGER,
        created_at TEXT NOT NULL
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        comparison_id INTEGER REFERENCES comparisons(id) ON DELETE CASCADE,
        row INTEGER NOT NULL DEFAULT 0,
        col INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL,
        modality TEXT NOT NULL,
        model_id TEXT NOT NULL,
        model_revision TEXT,
        backend TEXT,
        template_name TEXT,
        template_hash TEXT,
        variant TEXT,
        variables TEXT NOT NULL DEFAULT '{}',
        prompt TEXT NOT NULL,
        system TEXT,
        negative_prompt TEXT,
        params TEXT NOT NULL DEFAULT '{}',
        seed INTEGER NOT NULL,
        device TEXT,
        dtype TEXT,
        versions TEXT NOT NULL DEFAULT '{}',
        wall_s REAL, load_s REAL, tokens_per_s REAL, realtime_factor REAL,
        prompt_tokens INTEGER, completion_tokens INTEGER,
        output_text TEXT,
        artifact TEXT,
        error TEXT,
        cached_from INTEGER,
        cache_key TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX runs_comparison ON runs(comparison_id, row, col);
    CREATE INDEX runs_cache_key ON runs(cache_key);
    CREATE INDEX runs_created ON runs(created_at);
    CREATE TABLE ratings (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        stars INTEGER CHECK (stars BETWEEN 1 AND 5),
        thumbs INTEGER CHECK (thumbs IN (-1, 0, 1)),
        note TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX ratings_run ON ratings(run_id, id);
    """),
    (2, """
    CREATE VIRTUAL TABLE runs_fts USING fts5(prompt, output_text, content='runs', content_rowid='id');
    CREATE TRIGGER runs_fts_insert AFTER INSERT ON runs BEGIN
        INSERT INTO runs_fts(rowid, prompt, output_text) VALUES (new.id, new.prompt, coalesce(new.output_text, ''));
    END;
    CREATE TRIGGER runs_fts_delete AFTER DELETE ON runs BEGIN
        INSERT INTO runs_fts(runs_fts, rowid, prompt, output_text)
        VALUES ('delete', old.id, old.prompt, coalesce(old.output_text, ''));
    END;
    INSERT INTO runs_fts(rowid, prompt, output_text) SELECT id, prompt, coalesce(output_text, '') FROM runs;
    """),
    (3, """
    CREATE TRIGGER runs_fts_update AFTER UPDATE OF prompt, output_text ON runs BEGIN
        INSERT INTO runs_fts(runs_fts, rowid, prompt, output_text)
        VALUES ('delete', old.id, old.prompt, coalesce(old.output_text, ''));
        INSERT INTO runs_fts(rowid, prompt, output_text) VALUES (new.id, new.prompt, coalesce(new.output_text, ''));
    END;
    CREATE INDEX runs_template_variant ON runs(template_name, variant);
    CREATE INDEX runs_modality ON runs(modality, id);
    """),
    (4, """
    ALTER TABLE runs ADD COLUMN uid TEXT;
    ALTER TABLE runs ADD COLUMN imported INTEGER NOT NULL DEFAULT 0;
    UPDATE runs SET uid = lower(hex(randomblob(16))) WHERE uid IS NULL;
    CREATE UNIQUE INDEX runs_uid ON runs(uid);
    ALTER TABLE comparisons ADD COLUMN uid TEXT;
    UPDATE comparisons SET uid = lower(hex(randomblob(16))) WHERE uid IS NULL;
    CREATE UNIQUE INDEX comparisons_uid ON comparisons(uid);
    """),
    (5, """
    CREATE TABLE scores (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        value REAL,
        passed INTEGER CHECK (passed IN (0, 1)),
        detail TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        UNIQUE (run_id, name)
    );
    """),
    (6, """
    CREATE TABLE votes (
        id INTEGER PRIMARY KEY,
        comparison_id INTEGER NOT NULL REFERENCES comparisons(id) ON DELETE CASCADE,
        run_low INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        run_high INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        left_run_id INTEGER NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN ('win', 'tie', 'both_bad')),
        winner_run_id INTEGER,
        voter TEXT NOT NULL,
        reason TEXT,
        created_at TEXT NOT NULL,
        CHECK (run_low < run_high),
        CHECK (left_run_id IN (run_low, run_high)),
        CHECK ((outcome = 'win') = (winner_run_id IS NOT NULL)),
        CHECK (winner_run_id IS NULL OR winner_run_id IN (run_low, run_high)),
        UNIQUE (voter, run_low, run_high)
    );
    CREATE INDEX votes_comparison ON votes(comparison_id, id);
    """),
    # Who made a comparison: a visitor id on a public Space (see playground/visitors.py); NULL means local or shared.
    (7, """
    ALTER TABLE comparisons ADD COLUMN owner TEXT;
    CREATE INDEX comparisons_owner ON comparisons(owner, id);
    """),
    (8, """
    ALTER TABLE runs ADD COLUMN endpoint TEXT;
    ALTER TABLE runs ADD COLUMN formatted_prompt TEXT;
    ALTER TABLE runs ADD COLUMN ttft_s REAL;
    ALTER TABLE runs ADD COLUMN metrics TEXT NOT NULL DEFAULT '{}';
    """),
    # Experiments: a comparison with a dataset behind it, filled by a server-side job (playground/jobs/).
    # `cell_key` names a cell of an experiment (its dataset row, variant, seed and model): at most one run per cell
    # and comparison, so a resumed job never logs a cell twice. `reference` is the answer the cell's checks read.
    (9, """
    ALTER TABLE runs ADD COLUMN cell_key TEXT;
    ALTER TABLE runs ADD COLUMN reference TEXT;
    CREATE UNIQUE INDEX runs_cell_key ON runs(comparison_id, cell_key) WHERE cell_key IS NOT NULL;
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        owner TEXT,
        status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'paused', 'cancelled', 'done', 'failed',
                                               'interrupted')),
        spec TEXT NOT NULL DEFAULT '{}',
        spec_hash TEXT NOT NULL,
        options TEXT NOT NULL DEFAULT '{}',
        comparison_id INTEGER REFERENCES comparisons(id) ON DELETE SET NULL,
        progress TEXT NOT NULL DEFAULT '{}',
        error TEXT,
        worker TEXT,
        pid INTEGER,
        host TEXT,
        heartbeat_at REAL,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT
    );
    CREATE INDEX jobs_status ON jobs(status, id);
    CREATE INDEX jobs_spec ON jobs(kind, spec_hash, id);
    CREATE INDEX jobs_owner ON jobs(owner, id);
    CREATE INDEX jobs_comparison ON jobs(comparison_id);
    CREATE TABLE datasets (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        source TEXT NOT NULL DEFAULT '{}',
        columns TEXT NOT NULL DEFAULT '[]',
        row_count INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        owner TEXT,
        created_at TEXT NOT NULL
    );
    CREATE UNIQUE INDEX datasets_version ON datasets(version, coalesce(owner, ''));
    CREATE INDEX datasets_owner ON datasets(owner, id);
    """),
    # A re-run of one cell names the run it replaces (same comparison and cell); a run another replaces is no longer
    # live (queries.LIVE). Runs logged before: a later run at the same cell of a comparison replaced the one before.
    (12, """
    ALTER TABLE runs ADD COLUMN replaces INTEGER REFERENCES runs(id) ON DELETE SET NULL;
    UPDATE runs SET replaces = (SELECT max(p.id) FROM runs p WHERE p.comparison_id = runs.comparison_id
                                AND p.row = runs.row AND p.col = runs.col AND p.id < runs.id)
    WHERE comparison_id IS NOT NULL;
    CREATE UNIQUE INDEX runs_replaces ON runs(replaces) WHERE replaces IS NOT NULL;
    """),
    # A reference image or audio clip (a dataset's media column as the expected answer) is kept once in the data
    # dir, by its content hash (datasets/store.py: keep_reference); a run names the file its checks compared with.
    (13, """
    ALTER TABLE runs ADD COLUMN reference_file TEXT;
    """),
]
SCHEMA_VERSION = max(number for number, _ in MIGRATIONS)   # numbers are handed out, not always appended in order
STATUSES = ("ok", "error", "cancelled")
COMPARISON_STATUSES = ("running", "done", "partial", "failed", "cancelled", "interrupted")


def _statements(sql: str) -> Iterable[str]:
    """Split a migration into statements (triggers contain ';' inside BEGIN ... END)."""
    buffer = ""
    for line in sql.strip().splitlines():
        buffer += line + "\n"
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    if buffer.strip():
        yield buffer.strip()

