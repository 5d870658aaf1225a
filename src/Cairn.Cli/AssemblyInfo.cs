using System.Runtime.CompilerServices;

// Unit tests of the CLI's pure parts (parse errors, argument rewriting, delimiters, formats, tables) run in-process.
[assembly: InternalsVisibleTo("Cairn.Tests")]
