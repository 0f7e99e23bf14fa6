// The runs table: TanStack Table for columns, grouping (min/max/mean), nesting and selection;
// TanStack Virtual for rows and columns, so 100,000 runs and hundreds of columns scroll smoothly.
// Sorting is the server's (order_by); the caller loads more pages as the end comes into view.
import {
  type Cell,
  type ColumnDef,
  type ExpandedState,
  getCoreRowModel,
  getExpandedRowModel,
  getGroupedRowModel,
  type Header,
  type Row,
  useReactTable,
} from "@tanstack/react-table";
import { useVirtualizer } from "@tanstack/react-virtual";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { durationMs, type RunRow } from "../api/runs";
import { aggregate } from "../lib/aggregate";
import { type ColumnId, columnKey, columnLabel, sortable } from "../lib/columns";
import { formatDuration, formatNumber, formatTime } from "../lib/format";
import { StatusBadge } from "./common";

export interface SortState {
  column: ColumnId;
  descending: boolean;
}

type Value = string | number | undefined;

export function cellValue(r: RunRow, c: ColumnId, now: number): Value {
  switch (c.entity) {
    case "param":
      return r.params.get(c.key);
    case "tag":
      return r.tags.get(c.key);
    case "metric": {
      const m = r.metrics.get(c.key);
      if (!m) return undefined;
      return c.summary ? m[c.summary] : m.latest;
    }
    case "attr":
      switch (c.key) {
        case "run_name":
          return r.name;
        case "status":
          return r.status;
        case "start_time":
          return r.start;
        case "end_time":
          return r.end;
        case "duration":
          return durationMs(r, now);
        case "user_id":
          return r.user;
        case "source":
          return r.source;
        case "run_id":
          return r.id;
        case "experiment_id":
          return r.experimentId;
      }
  }
  return undefined;
}

function show(c: ColumnId, v: Value): preact.ComponentChildren {
  if (v === undefined || v === "") return <span class="muted">—</span>;
  if (c.entity === "attr") {
    if (c.key === "status") return <StatusBadge status={String(v)} />;
    if (c.key === "start_time" || c.key === "end_time") return formatTime(Number(v));
    if (c.key === "duration") return formatDuration(Number(v));
  }
  return typeof v === "number" ? formatNumber(v) : v;
}

const WIDTH: Record<string, number> = { "attr:run_name": 220, "attr:run_id": 280, "attr:source": 200, "attr:start_time": 170, "attr:end_time": 170 };
const ROW_HEIGHT = 34;
const SELECT_WIDTH = 44;

export function RunsTable({
  rows,
  columns,
  sort,
  onSort,
  groupBy,
  selected,
  onSelect,
  expanded,
  onExpand,
  onOpen,
  onNearEnd,
  loading,
}: {
  rows: RunRow[];
  columns: ColumnId[];
  sort: SortState | null;
  onSort: (s: SortState | null) => void;
  groupBy: ColumnId[];
  selected: string[];
  onSelect: (ids: string[]) => void;
  expanded: string[];
  onExpand: (ids: string[]) => void;
  onOpen: (runId: string) => void;
  onNearEnd: () => void;
  loading: boolean;
}) {
  const now = Date.now();
  // Table state must keep its identity between renders: TanStack's row models recompute (and
  // queue state resets, which render again) whenever a state value is a new object.
  const groupingKey = groupBy.map(columnKey).join(",");
  const grouping = useMemo(() => (groupingKey ? groupingKey.split(",") : []), [groupingKey]);
  const allColumns = useMemo(() => {
    const known = new Set(columns.map(columnKey));
    return [...groupBy.filter((g) => !known.has(columnKey(g))), ...columns];
  }, [columns, groupBy]);
  const defs = useMemo<ColumnDef<RunRow, Value>[]>(
    () =>
      allColumns.map((c) => ({
        id: columnKey(c),
        header: columnLabel(c),
        size: WIDTH[columnKey(c)] ?? 150,
        accessorFn: (r: RunRow) => cellValue(r, c, now),
        aggregationFn: (id: string, leafRows: Row<RunRow>[]) => aggregate(leafRows.map((l) => l.getValue(id))),
        meta: c,
      })),
    // `now` only matters for running durations, refreshed with every render anyway.
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [allColumns],
  );
  // Nested runs hang under their parent when it is loaded too (and nothing is grouped).
  const { roots, children } = useMemo(() => {
    const ids = new Set(rows.map((r) => r.id));
    const kids = new Map<string, RunRow[]>();
    const top: RunRow[] = [];
    for (const r of rows) {
      if (grouping.length === 0 && r.parentId && ids.has(r.parentId)) {
        const list = kids.get(r.parentId) ?? [];
        list.push(r);
        kids.set(r.parentId, list);
      } else top.push(r);
    }
    return { roots: top, children: kids };
  }, [rows, grouping]);
  const [groupExpanded, setGroupExpanded] = useState<ExpandedState>(true);
  const expandedKey = expanded.join(",");
  const nestExpanded: ExpandedState = useMemo(() => Object.fromEntries(expanded.map((id) => [id, true])), [expandedKey]);
  const selectedSet = useMemo(() => new Set(selected), [selected]);
  const table = useReactTable<RunRow>({
    data: roots,
    columns: defs,
    getRowId: (r) => r.id,
    getSubRows: (r) => children.get(r.id),
    getCoreRowModel: getCoreRowModel(),
    getGroupedRowModel: getGroupedRowModel(),
    getExpandedRowModel: getExpandedRowModel(),
    manualSorting: true,
    autoResetExpanded: false,
    autoResetPageIndex: false,
    groupedColumnMode: false,
    state: { grouping, expanded: grouping.length ? groupExpanded : nestExpanded },
    onExpandedChange: (updater) => {
      if (grouping.length) {
        setGroupExpanded((old) => (typeof updater === "function" ? updater(old) : updater));
        return;
      }
      const next = typeof updater === "function" ? updater(nestExpanded) : updater;
      onExpand(next === true ? [...children.keys()] : Object.keys(next).filter((k) => (next as Record<string, boolean>)[k]));
    },
  });
  const tableRows = table.getRowModel().rows;
  const headers = table.getHeaderGroups()[0].headers;
  const pinned = headers.slice(0, 1); // the run name (or the grouped column) stays in view
  const scrolled = headers.slice(1);
  const pinnedWidth = SELECT_WIDTH + pinned.reduce((w, h) => w + h.getSize(), 0);

  const scroller = useRef<HTMLDivElement>(null);
  const rowV = useVirtualizer({
    count: tableRows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 12,
  });
  const colV = useVirtualizer({
    horizontal: true,
    count: scrolled.length,
    getScrollElement: () => scroller.current,
    estimateSize: (i) => scrolled[i].getSize(),
    overscan: 4,
  });
  const vRows = rowV.getVirtualItems();
  const vCols = colV.getVirtualItems();
  const last = vRows.length ? vRows[vRows.length - 1].index : 0;
  useEffect(() => {
    if (last >= tableRows.length - 40) onNearEnd();
  }, [last, tableRows.length]);

  const [active, setActive] = useState(0);
  const focusRow = (i: number) => {
    const idx = Math.max(0, Math.min(tableRows.length - 1, i));
    setActive(idx);
    rowV.scrollToIndex(idx);
    requestAnimationFrame(() => scroller.current?.querySelector<HTMLElement>(`[data-index="${idx}"]`)?.focus());
  };
  const toggle = (ids: string[], on: boolean) => {
    const next = new Set(selected);
    for (const id of ids) {
      if (on) next.add(id);
      else next.delete(id);
    }
    onSelect([...next]);
  };
  const leafIds = (row: Row<RunRow>): string[] => (row.getIsGrouped() ? row.getLeafRows().filter((l) => !l.getIsGrouped()).map((l) => l.original.id) : [row.original.id]);
  const totalWidth = pinnedWidth + colV.getTotalSize();
  const leftPad = vCols.length ? vCols[0].start : 0;
  const rightPad = vCols.length ? colV.getTotalSize() - vCols[vCols.length - 1].end : 0;

  const headerCell = (h: Header<RunRow, unknown>, sticky: boolean, left: number) => {
    const c = h.column.columnDef.meta as ColumnId;
    const on = sort && columnKey(sort.column) === h.id ? sort : null;
    const ariaSort = on ? (on.descending ? "descending" : "ascending") : "none";
    return (
      <div
        key={h.id}
        role="columnheader"
        aria-sort={ariaSort}
        class={`th${sticky ? " sticky" : ""}`}
        style={{ width: `${h.getSize()}px`, ...(sticky ? { left: `${left}px` } : {}) }}
      >
        {sortable(c) ? (
          <button
            type="button"
            class="sort"
            title={`Sort by ${columnLabel(c)}`}
            onClick={() => onSort(!on ? { column: c, descending: true } : on.descending ? { column: c, descending: false } : null)}
          >
            {columnLabel(c)}
            <span aria-hidden="true">{on ? (on.descending ? " ▼" : " ▲") : ""}</span>
          </button>
        ) : (
          <span>{columnLabel(c)}</span>
        )}
      </div>
    );
  };

  const bodyCell = (row: Row<RunRow>, cell: Cell<RunRow, unknown>, sticky: boolean, left: number) => {
    const c = cell.column.columnDef.meta as ColumnId;
    const style = { width: `${cell.column.getSize()}px`, ...(sticky ? { left: `${left}px` } : {}) };
    let content: preact.ComponentChildren;
    if (cell.getIsGrouped()) {
      content = (
        <button type="button" class="expander" aria-expanded={row.getIsExpanded()} onClick={row.getToggleExpandedHandler()}>
          {row.getIsExpanded() ? "▾" : "▸"} {cell.getValue() === undefined ? <span class="muted">no value</span> : show(c, cell.getValue() as Value)}{" "}
          <span class="muted">({row.subRows.length})</span>
        </button>
      );
    } else if (grouping.length > 0 && cell.getIsAggregated()) {
      const a = cell.getValue() as ReturnType<typeof aggregate>;
      content = a ? (
        <span title={`min ${formatNumber(a.min)}, max ${formatNumber(a.max)}, mean ${formatNumber(a.mean)} over ${a.n}`}>
          {formatNumber(a.mean)} <span class="muted">[{formatNumber(a.min)}, {formatNumber(a.max)}]</span>
        </span>
      ) : (
        ""
      );
    } else if (grouping.length > 0 && cell.getIsPlaceholder()) {
      content = "";
    } else if (c.entity === "attr" && c.key === "run_name" && !row.getIsGrouped()) {
      const r = row.original;
      content = (
        <span class="name-cell" style={{ paddingLeft: `${row.depth * 18}px` }}>
          {row.getCanExpand() ? (
            <button
              type="button"
              class="expander"
              aria-expanded={row.getIsExpanded()}
              aria-label={`${row.getIsExpanded() ? "Hide" : "Show"} nested runs of ${r.name}`}
              onClick={row.getToggleExpandedHandler()}
            >
              {row.getIsExpanded() ? "▾" : "▸"}
            </button>
          ) : null}
          <a href={`/runs/${r.id}`} tabIndex={-1}>
            {r.name || r.id}
          </a>
          {r.deleted && <span class="badge">deleted</span>}
        </span>
      );
    } else {
      content = show(c, cell.getValue() as Value);
    }
    return (
      <div key={cell.id} role="gridcell" class={`td${sticky ? " sticky" : ""}${typeof cell.getValue() === "number" ? " num" : ""}`} style={style}>
        {content}
      </div>
    );
  };

  const allLoadedSelected = rows.length > 0 && rows.every((r) => selectedSet.has(r.id));
  return (
    <div
      ref={scroller}
      class="runs-scroller"
      role="grid"
      aria-label="Runs"
      aria-rowcount={tableRows.length + 1}
      aria-colcount={allColumns.length + 1}
      aria-busy={loading}
      onKeyDown={(e) => {
        const keys: Record<string, number> = { ArrowDown: 1, ArrowUp: -1, PageDown: 15, PageUp: -15 };
        if (e.key in keys) {
          e.preventDefault();
          focusRow(active + keys[e.key]);
        } else if (e.key === "Home" && e.ctrlKey) focusRow(0);
        else if (e.key === "End" && e.ctrlKey) focusRow(tableRows.length - 1);
      }}
    >
      <div role="rowgroup" class="thead" style={{ width: `${totalWidth}px` }}>
        <div role="row" aria-rowindex={1} class="tr">
          <div role="columnheader" class="th sticky select" style={{ width: `${SELECT_WIDTH}px`, left: "0px" }}>
            <input
              type="checkbox"
              aria-label="Select all loaded runs"
              checked={allLoadedSelected}
              onChange={(e) => toggle(rows.map((r) => r.id), e.currentTarget.checked)}
            />
          </div>
          {pinned.map((h) => headerCell(h, true, SELECT_WIDTH))}
          <div class="pad" style={{ width: `${leftPad}px` }} />
          {vCols.map((vc) => headerCell(scrolled[vc.index], false, 0))}
          <div class="pad" style={{ width: `${rightPad}px` }} />
        </div>
      </div>
      <div role="rowgroup" class="tbody" style={{ height: `${rowV.getTotalSize()}px`, width: `${totalWidth}px` }}>
        {vRows.map((vr) => {
          const row = tableRows[vr.index];
          const cells = row.getVisibleCells();
          const ids = leafIds(row);
          const isSelected = ids.length > 0 && ids.every((id) => selectedSet.has(id));
          const label = row.getIsGrouped() ? `group ${String(row.groupingValue)}` : `run ${row.original.name || row.original.id}`;
          return (
            <div
              key={row.id}
              role="row"
              data-index={vr.index}
              aria-rowindex={vr.index + 2}
              aria-selected={isSelected}
              aria-level={row.depth + 1}
              tabIndex={vr.index === active ? 0 : -1}
              class={`tr${isSelected ? " selected" : ""}${row.getIsGrouped() ? " group" : ""}`}
              style={{ transform: `translateY(${vr.start}px)`, height: `${ROW_HEIGHT}px` }}
              onFocus={() => setActive(vr.index)}
              onKeyDown={(e) => {
                if (e.target !== e.currentTarget) return;
                if (e.key === "Enter" && !row.getIsGrouped()) onOpen(row.original.id);
                else if (e.key === " ") {
                  e.preventDefault();
                  toggle(ids, !isSelected);
                } else if ((e.key === "ArrowRight" || e.key === "ArrowLeft") && row.getCanExpand()) {
                  e.preventDefault();
                  row.toggleExpanded(e.key === "ArrowRight");
                }
              }}
            >
              <div role="gridcell" class="td sticky select" style={{ width: `${SELECT_WIDTH}px`, left: "0px" }}>
                <input type="checkbox" aria-label={`Select ${label}`} checked={isSelected} tabIndex={-1} onChange={(e) => toggle(ids, e.currentTarget.checked)} />
              </div>
              {cells.slice(0, 1).map((cell) => bodyCell(row, cell, true, SELECT_WIDTH))}
              <div class="pad" style={{ width: `${leftPad}px` }} />
              {vCols.map((vc) => bodyCell(row, cells[vc.index + 1], false, 0))}
              <div class="pad" style={{ width: `${rightPad}px` }} />
            </div>
          );
        })}
      </div>
    </div>
  );
}
