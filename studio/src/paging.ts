// Keyset paging state for a table view: the server gives a cursor for the next page; going
// back pops the cursors we came through. Changing the sort or the filter starts over.

export interface Sort { column: string; descending: boolean }
export interface Filter { column: string; op: string; value: string }

export interface PagingState {
  sort: Sort | null;
  filter: Filter | null;
  cursors: (string | null)[]; // the cursor each visited page was asked with; last = current
  next: string | null;
}

export type PagingAction =
  | { type: "sort"; column: string }
  | { type: "filter"; filter: Filter | null }
  | { type: "loaded"; next: string | null }
  | { type: "next" }
  | { type: "previous" };

export const initialPaging: PagingState = { sort: null, filter: null, cursors: [null], next: null };

export function paging(state: PagingState, action: PagingAction): PagingState {
  switch (action.type) {
    case "sort": {
      const same = state.sort?.column === action.column;
      const sort = !same
        ? { column: action.column, descending: false }
        : state.sort!.descending
          ? null
          : { column: action.column, descending: true };
      return { ...state, sort, cursors: [null], next: null };
    }
    case "filter":
      return { ...state, filter: action.filter, cursors: [null], next: null };
    case "loaded":
      return { ...state, next: action.next };
    case "next":
      return state.next ? { ...state, cursors: [...state.cursors, state.next], next: null } : state;
    case "previous":
      return state.cursors.length > 1 ? { ...state, cursors: state.cursors.slice(0, -1), next: null } : state;
  }
}

export const pageNumber = (state: PagingState) => state.cursors.length;

export function pageQuery(state: PagingState, limit: number): string {
  const params = new URLSearchParams({ limit: String(limit) });
  if (state.sort) {
    params.set("sort", state.sort.column);
    if (state.sort.descending) params.set("desc", "true");
  }
  if (state.filter) {
    params.set("where", state.filter.column);
    params.set("op", state.filter.op);
    if (state.filter.op !== "null" && state.filter.op !== "notnull") params.set("value", state.filter.value);
  }
  const cursor = state.cursors[state.cursors.length - 1];
  if (cursor) params.set("after", cursor);
  return params.toString();
}
