// Cairn.Offsets: offset types, stores, tracker and hooks for applications that track their own position.
