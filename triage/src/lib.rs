//! Turns raw events into desired ticket states: normalise, group, owner, lane, due date.
