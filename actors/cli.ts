#!/usr/bin/env node
// The sgw command line.
export {};
