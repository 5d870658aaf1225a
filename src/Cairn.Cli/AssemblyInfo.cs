[assembly: System.Runtime.CompilerServices.InternalsVisibleTo("Cairn.Tests")]
