using System.Runtime.CompilerServices;

// The unit tests check the command line's pure parts (table layout, completion scripts) without starting a process.
[assembly: InternalsVisibleTo("Cairn.Tests")]
