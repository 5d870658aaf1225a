using System.Runtime.CompilerServices;

// Unit tests of the CLI's pure parts (argument rewriting, delimiters, formats) run in-process.
[assembly: InternalsVisibleTo("Cairn.Tests")]
