using System.Runtime.CompilerServices;

namespace Cairn.Interop.Tests.Infrastructure;

internal static class ChildProcessSetup
{
    /// <summary>Every command these tests start is checked first: a missing client fails the test, naming it and how to install it.</summary>
    [ModuleInitializer]
    internal static void CheckClientsBeforeStart() => ChildProcess.BeforeStart = ClientTools.EnsureInstalled;
}
